//! Job rows: inserting them (the low level of `berth_workers::enqueue`), and the tenant-scoped
//! reads and the manual retry behind the API. Claiming and completing are the workers' business
//! and live in `berth_workers::queue`.

use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, QueryFilter, Statement,
    TransactionTrait,
};
use serde_json::{json, Value};
use uuid::Uuid;

use super::audit::{self, Event};
use super::page::{self, Page, Paged};
use crate::access::{self, Caller};
use crate::entities::jobs::{self, JobState};
use crate::error::{conflict_on_unique, Error, Result};

/// The PostgreSQL channel idle workers LISTEN on; the payload is the queue name.
pub const NOTIFY_CHANNEL: &str = "berth_jobs";

/// Wakes the workers of this process. On SQLite (one process) this is the whole wake-up path;
/// on PostgreSQL it only shortens the way for jobs enqueued by the same process.
pub static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// A job row to insert. `berth_workers` fills it from a typed job.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub queue: String,
    pub priority: i32,
    pub payload: Value,
    pub max_attempts: i32,
    pub dedup_key: Option<String>,
    pub customer_id: Option<Uuid>,
    pub flow_run_id: Option<Uuid>,
    pub scheduled_for: Option<chrono::DateTime<chrono::Utc>>,
    /// Not before this instant; `None` for now.
    pub run_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Inserts jobs on `db`, which should be the transaction of the state change that needs them:
/// they become visible (and wake the workers) when it commits, and vanish if it rolls back.
/// Returns the ids inserted; a job whose `dedup_key` is already queued or running is skipped.
/// One statement for the whole batch.
pub async fn insert(db: &impl ConnectionTrait, new: Vec<NewJob>) -> Result<Vec<Uuid>> {
    let Some((mut q, queues)) = insert_statement(new) else {
        return Ok(vec![]);
    };
    q.returning_col(jobs::Column::Id);
    let backend = db.get_database_backend();
    let rows = db.query_all(backend.build(&q)).await?;
    let mut inserted = Vec::with_capacity(rows.len());
    for row in rows {
        inserted.push(row.try_get::<Uuid>("", "id")?);
    }
    if !inserted.is_empty() {
        notify(db, &queues).await?;
    }
    Ok(inserted)
}

/// The INSERT of [`insert`] (without its RETURNING) and the queues it fills, for a caller that
/// sends it with others ([`super::batch::Batch`]); `None` for no jobs.
pub(crate) fn insert_statement(new: Vec<NewJob>) -> Option<(sea_orm::sea_query::InsertStatement, Vec<String>)> {
    if new.is_empty() {
        return None;
    }
    let now = super::now();
    let mut queues: Vec<String> = Vec::new();
    let mut q = Query::insert();
    q.into_table(jobs::Entity).columns([
        jobs::Column::Id,
        jobs::Column::Kind,
        jobs::Column::Queue,
        jobs::Column::Priority,
        jobs::Column::State,
        jobs::Column::Payload,
        jobs::Column::Attempts,
        jobs::Column::MaxAttempts,
        jobs::Column::RunAt,
        jobs::Column::DedupKey,
        jobs::Column::CustomerId,
        jobs::Column::FlowRunId,
        jobs::Column::ScheduledFor,
        jobs::Column::CreatedAt,
        jobs::Column::UpdatedAt,
    ]);
    for job in new {
        if !queues.contains(&job.queue) {
            queues.push(job.queue.clone());
        }
        q.values_panic([
            Uuid::now_v7().into(),
            job.kind.into(),
            job.queue.into(),
            job.priority.into(),
            "queued".into(),
            job.payload.into(),
            0i32.into(),
            job.max_attempts.max(1).into(),
            job.run_at.unwrap_or(now).into(),
            job.dedup_key.into(),
            job.customer_id.into(),
            job.flow_run_id.into(),
            job.scheduled_for.into(),
            now.into(),
            now.into(),
        ]);
    }
    // Only the de-duplication index can conflict (ids are fresh): skip such rows, don't fail.
    q.on_conflict(OnConflict::new().do_nothing().to_owned());
    Some((q, queues))
}

/// Tells idle workers that `queues` have new work. On PostgreSQL the notification is
/// transactional: delivered at commit, dropped on rollback.
pub async fn notify(db: &impl ConnectionTrait, queues: &[String]) -> Result<()> {
    if db.get_database_backend() == DbBackend::Postgres {
        for queue in queues {
            db.execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [NOTIFY_CHANNEL.into(), queue.clone().into()],
            ))
            .await?;
        }
    }
    if !queues.is_empty() {
        WAKE.notify_waiters();
    }
    Ok(())
}

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub kind: Option<String>,
    pub state: Option<JobState>,
    pub queue: Option<String>,
    pub customer_id: Option<Uuid>,
    pub flow_run_id: Option<Uuid>,
}

/// Admins see every job; customer users only jobs done for their customer.
pub async fn list(
    db: &impl ConnectionTrait,
    caller: &Caller,
    filter: Filter,
    page: Page,
) -> Result<Paged<jobs::Model>> {
    let mut q = access::jobs(caller);
    if let Some(kind) = filter.kind {
        q = q.filter(jobs::Column::Kind.eq(kind));
    }
    if let Some(state) = filter.state {
        q = q.filter(jobs::Column::State.eq(state));
    }
    if let Some(queue) = filter.queue {
        q = q.filter(jobs::Column::Queue.eq(queue));
    }
    if let Some(c) = filter.customer_id {
        q = q.filter(jobs::Column::CustomerId.eq(c));
    }
    if let Some(f) = filter.flow_run_id {
        q = q.filter(jobs::Column::FlowRunId.eq(f));
    }
    page::fetch(db, q, jobs::Column::Id, page, |m| m.id).await
}

pub async fn get(db: &impl ConnectionTrait, caller: &Caller, id: Uuid) -> Result<jobs::Model> {
    access::jobs(caller).filter(jobs::Column::Id.eq(id)).one(db).await?.ok_or(Error::NotFound("job"))
}

/// Admin-only: puts a dead job back in its queue with a fresh set of attempts, audited.
pub async fn retry<C: ConnectionTrait + TransactionTrait>(db: &C, caller: &Caller, id: Uuid) -> Result<jobs::Model> {
    caller.require_admin()?;
    let txn = db.begin().await?;
    let current = get(&txn, caller, id).await?;
    if current.state != JobState::Dead {
        return Err(Error::Conflict(format!(
            "only dead jobs can be retried by hand; this one is {}",
            json!(current.state).as_str().unwrap_or("active")
        )));
    }
    let mut active: jobs::ActiveModel = current.clone().into();
    let now = super::now();
    active.state = Set(JobState::Queued);
    active.attempts = Set(0);
    active.run_at = Set(now);
    active.lease_id = Set(None);
    active.lease_expires_at = Set(None);
    active.finished_at = Set(None);
    active.updated_at = Set(now);
    let model = active
        .update(&txn)
        .await
        .map_err(|e| conflict_on_unique(e, "a job with the same de-duplication key is already queued or running"))?;
    audit::record(
        &txn,
        caller,
        Event::new("job.retry", "job", id)
            .customer(current.customer_id)
            .details(json!({"kind": current.kind, "last_error": current.last_error, "attempts": current.attempts})),
    )
    .await?;
    notify(&txn, std::slice::from_ref(&model.queue)).await?;
    txn.commit().await?;
    Ok(model)
}
