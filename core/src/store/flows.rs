//! Flow runs and their steps: creating a run (with the job that drives it, in the caller's
//! transaction; typed callers use [`crate::flows::start`]), the tenant-scoped reads behind the API, and the manual retry of a failed run.
//! Executing the steps is `berth_workers::flows`.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QueryTrait,
    TransactionTrait,
};
use serde_json::{json, Value};

use crate::jobs::flow::DriveFlow;
use crate::jobs::Job;
use uuid::Uuid;

use super::audit::{self, Event};
use super::batch::Batch;
use super::jobs::{self, NewJob};
use super::page::{self, Page, Paged};
use crate::access::{self, Caller};
use crate::entities::flow_runs::{self, FlowState};
use crate::entities::flow_steps::{self, StepState};
use crate::error::{conflict_on_unique, Error, Result};

#[derive(Debug, Clone)]
pub struct NewRun {
    pub kind: String,
    pub steps: Vec<String>,
    pub input: Value,
    pub customer_id: Option<Uuid>,
    pub max_attempts: i32,
}

/// The row of the job that drives `run_id`.
fn driver_job(run_id: Uuid, customer_id: Option<Uuid>, max_attempts: i32) -> Result<NewJob> {
    let options = crate::jobs::Options {
        customer_id,
        flow_run_id: Some(run_id),
        max_attempts: Some(max_attempts),
        ..Default::default()
    };
    crate::jobs::row(&DriveFlow { flow_run_id: run_id }, &options)
}

/// Creates a run, its pending steps and the job that drives it on `db` (the caller's
/// transaction): all of it commits with the state change that started the flow, or none does.
pub async fn create(db: &impl ConnectionTrait, new: NewRun) -> Result<flow_runs::Model> {
    create_with_id(db, Uuid::now_v7(), new).await
}

/// [`create`] with the run's id chosen by the caller (a fresh UUIDv7), for a caller that must
/// name the run before it is written. One statement on PostgreSQL (see [`Batch`]), whatever the
/// number of steps.
pub async fn create_with_id(db: &impl ConnectionTrait, id: Uuid, new: NewRun) -> Result<flow_runs::Model> {
    let mut batch = Batch::new();
    let run = create_in(&mut batch, id, new)?;
    batch.exec(db).await?;
    Ok(run)
}

/// Adds the run, its pending steps and its driver job to `batch` (which the caller sends in its
/// transaction, with the rest of its change).
pub(crate) fn create_in(batch: &mut Batch, id: Uuid, new: NewRun) -> Result<flow_runs::Model> {
    let now = super::now();
    let run = flow_runs::Model {
        id,
        kind: new.kind,
        state: FlowState::Running,
        customer_id: new.customer_id,
        input: new.input,
        current_step: None,
        error: None,
        created_at: now,
        updated_at: now,
        finished_at: None,
    };
    batch.insert(flow_runs::Entity::insert(flow_runs::ActiveModel::from(run.clone())).into_query());
    // Every step in one INSERT, however long the flow.
    let steps: Vec<_> = new
        .steps
        .into_iter()
        .enumerate()
        .map(|(position, name)| flow_steps::ActiveModel {
            id: Set(Uuid::now_v7()),
            flow_run_id: Set(run.id),
            position: Set(position as i32),
            idempotency_key: Set(format!("{}:{name}", run.id)),
            name: Set(name),
            state: Set(StepState::Pending),
            attempts: Set(0),
            error: Set(None),
            started_at: Set(None),
            finished_at: Set(None),
        })
        .collect();
    if !steps.is_empty() {
        batch.insert(flow_steps::Entity::insert_many(steps).into_query());
    }
    if let Some((insert, queues)) = jobs::insert_statement(vec![driver_job(run.id, run.customer_id, new.max_attempts)?])
    {
        batch.insert(insert);
        for queue in &queues {
            batch.wake(queue);
        }
    }
    Ok(run)
}

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub kind: Option<String>,
    pub state: Option<FlowState>,
    pub customer_id: Option<Uuid>,
}

pub async fn list(
    db: &impl ConnectionTrait,
    caller: &Caller,
    filter: Filter,
    page: Page,
) -> Result<Paged<flow_runs::Model>> {
    let mut q = access::flow_runs(caller);
    if let Some(kind) = filter.kind {
        q = q.filter(flow_runs::Column::Kind.eq(kind));
    }
    if let Some(state) = filter.state {
        q = q.filter(flow_runs::Column::State.eq(state));
    }
    if let Some(c) = filter.customer_id {
        q = q.filter(flow_runs::Column::CustomerId.eq(c));
    }
    page::fetch(db, q, flow_runs::Column::Id, page, |m| m.id).await
}

pub async fn get(db: &impl ConnectionTrait, caller: &Caller, id: Uuid) -> Result<flow_runs::Model> {
    access::flow_runs(caller).filter(flow_runs::Column::Id.eq(id)).one(db).await?.ok_or(Error::NotFound("flow run"))
}

/// A run with its steps in order; the same scoping as [`get`].
pub async fn get_with_steps(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: Uuid,
) -> Result<(flow_runs::Model, Vec<flow_steps::Model>)> {
    let run = get(db, caller, id).await?;
    let steps = steps(db, run.id).await?;
    Ok((run, steps))
}

/// The steps of a run in order (no scoping: for the workers and for callers that already
/// checked the run).
pub async fn steps(db: &impl ConnectionTrait, run_id: Uuid) -> Result<Vec<flow_steps::Model>> {
    Ok(flow_steps::Entity::find()
        .filter(flow_steps::Column::FlowRunId.eq(run_id))
        .order_by_asc(flow_steps::Column::Position)
        .all(db)
        .await?)
}

/// Admin-only: resumes a failed run at the step that failed, with a fresh driver job; audited.
pub async fn retry<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    id: Uuid,
) -> Result<flow_runs::Model> {
    caller.require_admin()?;
    let txn = db.begin().await?;
    let current = get(&txn, caller, id).await?;
    if current.state != FlowState::Failed {
        return Err(Error::Conflict("only failed flow runs can be retried".into()));
    }
    let mut active: flow_runs::ActiveModel = current.clone().into();
    active.state = Set(FlowState::Running);
    active.finished_at = Set(None);
    active.updated_at = Set(super::now());
    let model = active.update(&txn).await?;
    let inserted = jobs::insert(&txn, vec![driver_job(id, current.customer_id, DriveFlow::MAX_ATTEMPTS)?])
        .await
        .map_err(|e| match e {
            Error::Db(db) => conflict_on_unique(db, "this flow run is already being driven"),
            other => other,
        })?;
    if inserted.is_empty() {
        return Err(Error::Conflict("this flow run is already being driven".into()));
    }
    audit::record(
        &txn,
        caller,
        Event::new("flow.retry", "flow_run", id)
            .customer(current.customer_id)
            .details(json!({"kind": current.kind, "step": current.current_step, "error": current.error})),
    )
    .await?;
    txn.commit().await?;
    Ok(model)
}
