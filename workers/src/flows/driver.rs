//! Runs the `flow.run` job ([`DriveFlow`]): drives one flow run through its steps, recording each, resuming after
//! the last succeeded step. Every step write happens in a transaction that first checks the
//! job's lease (the fence), so a driver that lost its lease records nothing more.

use async_trait::async_trait;
use berth_core::entities::flow_runs::{self, FlowState};
use berth_core::entities::flow_steps::{self, StepState};
use berth_core::entities::jobs::{self, JobState};
use berth_core::jobs::flow::DriveFlow;
use berth_core::jobs::Job;
use chrono::Utc;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, TransactionTrait};
use uuid::Uuid;

use super::StepContext;
use crate::queue::{store, JobContext, RunJob};

#[derive(Debug, thiserror::Error)]
#[error("this worker lost the lease on the job driving the flow run; another worker continues it")]
struct LostLease;

#[async_trait]
impl RunJob for DriveFlow {
    #[tracing::instrument(skip(self, ctx), fields(flow_run.id = %self.flow_run_id), err)]
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let db = ctx.db();
        let run = flow_runs::Entity::find_by_id(self.flow_run_id)
            .one(db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("flow run {} does not exist", self.flow_run_id))?;
        if run.state == FlowState::Succeeded {
            return Ok(());
        }
        let flow = ctx
            .flows
            .get(&run.kind)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("this worker does not know flow `{}`", run.kind))?;
        let steps = berth_core::store::flows::steps(db, run.id).await?;

        for step in steps.iter().filter(|s| s.state != StepState::Succeeded) {
            let attempt = step.attempts + 1;
            let now = Utc::now();
            fenced(ctx, |txn| async move {
                flow_steps::Entity::update_many()
                    .col_expr(flow_steps::Column::State, Expr::value(StepState::Running))
                    .col_expr(flow_steps::Column::Attempts, Expr::value(attempt))
                    .col_expr(flow_steps::Column::StartedAt, Expr::value(now))
                    .col_expr(flow_steps::Column::FinishedAt, Expr::value(Option::<chrono::DateTime<Utc>>::None))
                    .col_expr(flow_steps::Column::Error, Expr::value(Option::<String>::None))
                    .filter(flow_steps::Column::Id.eq(step.id))
                    .exec(&txn)
                    .await?;
                set_run(&txn, run.id, FlowState::Running, Some(&step.name), None, false).await?;
                Ok(txn)
            })
            .await?;

            let step_ctx = StepContext {
                env: ctx.env.clone(),
                run_id: run.id,
                customer_id: run.customer_id,
                step: step.name.clone(),
                idempotency_key: step.idempotency_key.clone(),
                attempt,
            };
            let result = flow.step(step_ctx, run.input.clone()).await;
            let now = Utc::now();
            match result {
                Ok(()) => {
                    fenced(ctx, |txn| async move {
                        set_step(&txn, step.id, StepState::Succeeded, None, now).await?;
                        Ok(txn)
                    })
                    .await?;
                    tracing::info!(flow = %run.kind, step = %step.name, attempt, "Flow step succeeded");
                }
                Err(e) => {
                    let error = format!("{e:#}");
                    let err_for_txn = error.clone();
                    fenced(ctx, |txn| async move {
                        set_step(&txn, step.id, StepState::Failed, Some(&err_for_txn), now).await?;
                        set_run(&txn, run.id, FlowState::Running, Some(&step.name), Some(&err_for_txn), false).await?;
                        Ok(txn)
                    })
                    .await?;
                    return Err(anyhow::anyhow!("step `{}` failed: {error}", step.name));
                }
            }
        }
        fenced(ctx, |txn| async move {
            set_run(&txn, run.id, FlowState::Succeeded, None, None, true).await?;
            Ok(txn)
        })
        .await?;
        tracing::info!(flow = %run.kind, flow_run.id = %run.id, "Flow run succeeded");
        Ok(())
    }
}

/// Runs `body` in a transaction that first checks this job's lease; commits only if it holds.
async fn fenced<F, Fut>(ctx: &JobContext, body: F) -> anyhow::Result<()>
where
    F: FnOnce(sea_orm::DatabaseTransaction) -> Fut,
    Fut: std::future::Future<Output = Result<sea_orm::DatabaseTransaction, DbErr>>,
{
    let txn = ctx.db().begin().await?;
    if !store::fence(&txn, ctx.job_id, ctx.lease_id).await? {
        txn.rollback().await?;
        return Err(LostLease.into());
    }
    let txn = body(txn).await?;
    txn.commit().await?;
    Ok(())
}

async fn set_step(
    txn: &impl ConnectionTrait,
    id: Uuid,
    state: StepState,
    error: Option<&str>,
    at: chrono::DateTime<Utc>,
) -> Result<(), DbErr> {
    flow_steps::Entity::update_many()
        .col_expr(flow_steps::Column::State, Expr::value(state))
        .col_expr(flow_steps::Column::Error, Expr::value(error.map(str::to_owned)))
        .col_expr(flow_steps::Column::FinishedAt, Expr::value(at))
        .filter(flow_steps::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}

async fn set_run(
    txn: &impl ConnectionTrait,
    id: Uuid,
    state: FlowState,
    step: Option<&str>,
    error: Option<&str>,
    finished: bool,
) -> Result<(), DbErr> {
    let now = Utc::now();
    flow_runs::Entity::update_many()
        .col_expr(flow_runs::Column::State, Expr::value(state))
        .col_expr(flow_runs::Column::CurrentStep, Expr::value(step.map(str::to_owned)))
        .col_expr(flow_runs::Column::Error, Expr::value(error.map(str::to_owned)))
        .col_expr(flow_runs::Column::UpdatedAt, Expr::value(now))
        .col_expr(flow_runs::Column::FinishedAt, Expr::value(finished.then_some(now)))
        .filter(flow_runs::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}

/// The run's driver died on its last attempt: the run is failed, keeping the step it stopped at.
pub(crate) async fn mark_failed(txn: &impl ConnectionTrait, run_id: Uuid, error: &str) -> Result<(), DbErr> {
    let now = Utc::now();
    flow_runs::Entity::update_many()
        .col_expr(flow_runs::Column::State, Expr::value(FlowState::Failed))
        .col_expr(flow_runs::Column::Error, Expr::value(error))
        .col_expr(flow_runs::Column::UpdatedAt, Expr::value(now))
        .col_expr(flow_runs::Column::FinishedAt, Expr::value(now))
        .filter(flow_runs::Column::Id.eq(run_id))
        .filter(flow_runs::Column::State.eq(FlowState::Running))
        .exec(txn)
        .await?;
    Ok(())
}

/// Fails running flow runs left without a live driver (their driver job died by lease expiry).
pub(crate) async fn fail_orphaned_runs(txn: &impl ConnectionTrait) -> Result<(), DbErr> {
    let live = Query::select()
        .column(jobs::Column::FlowRunId)
        .from(jobs::Entity)
        .and_where(jobs::Column::Kind.eq(DriveFlow::NAME))
        .and_where(jobs::Column::State.is_in([JobState::Queued, JobState::Running]))
        .and_where(jobs::Column::FlowRunId.is_not_null())
        .to_owned();
    let dead = Query::select()
        .column(jobs::Column::FlowRunId)
        .from(jobs::Entity)
        .and_where(jobs::Column::Kind.eq(DriveFlow::NAME))
        .and_where(jobs::Column::State.eq(JobState::Dead))
        .and_where(jobs::Column::FlowRunId.is_not_null())
        .to_owned();
    let now = Utc::now();
    flow_runs::Entity::update_many()
        .col_expr(flow_runs::Column::State, Expr::value(FlowState::Failed))
        .col_expr(flow_runs::Column::Error, Expr::value(store::LEASE_EXPIRED))
        .col_expr(flow_runs::Column::UpdatedAt, Expr::value(now))
        .col_expr(flow_runs::Column::FinishedAt, Expr::value(now))
        .filter(
            Condition::all()
                .add(flow_runs::Column::State.eq(FlowState::Running))
                .add(flow_runs::Column::Id.in_subquery(dead))
                .add(flow_runs::Column::Id.not_in_subquery(live)),
        )
        .exec(txn)
        .await?;
    Ok(())
}
