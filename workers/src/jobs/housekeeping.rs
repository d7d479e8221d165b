//! Runs the maintenance jobs defined in `berth_core::jobs::housekeeping`.

use async_trait::async_trait;
use berth_core::entities::flow_runs::{self, FlowState};
use berth_core::entities::jobs::{self, JobState};
use berth_core::entities::password_tokens;
use berth_core::jobs::housekeeping::{PurgePasswordLinks, RemoveRetiredVolumes, Retention};
use chrono::Utc;
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter};

use crate::queue::{JobContext, RunJob};

#[async_trait]
impl RunJob for PurgePasswordLinks {
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let n = purge_password_links(ctx.db()).await?;
        if n > 0 {
            tracing::info!(removed = n, "Removed expired or used set-password links");
        }
        Ok(())
    }
}

pub async fn purge_password_links(db: &DatabaseConnection) -> Result<u64, sea_orm::DbErr> {
    let cutoff = Utc::now() - chrono::Duration::days(1);
    let res = password_tokens::Entity::delete_many()
        .filter(
            Condition::any()
                .add(password_tokens::Column::ExpiresAt.lt(cutoff))
                .add(password_tokens::Column::UsedAt.lt(cutoff)),
        )
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

#[async_trait]
impl RunJob for Retention {
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let cutoff = Utc::now() - chrono::Duration::days(i64::from(self.days.max(1)));
        let jobs = jobs::Entity::delete_many()
            .filter(jobs::Column::State.eq(JobState::Done))
            .filter(jobs::Column::FinishedAt.lt(cutoff))
            .exec(ctx.db())
            .await?
            .rows_affected;
        let runs = flow_runs::Entity::delete_many()
            .filter(flow_runs::Column::State.eq(FlowState::Succeeded))
            .filter(flow_runs::Column::FinishedAt.lt(cutoff))
            .exec(ctx.db())
            .await?
            .rows_affected;
        if jobs + runs > 0 {
            tracing::info!(jobs, flow_runs = runs, days = self.days, "Removed old finished jobs and flow runs");
        }
        Ok(())
    }
}

#[async_trait]
impl RunJob for RemoveRetiredVolumes {
    #[tracing::instrument(name = "housekeeping.retired_volumes", skip_all, err)]
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let env = ctx.env.as_ref();
        if env.runtime.is_none() {
            return Ok(());
        }
        let ops = berth_ops::Ops::new(env.db.clone(), env.keys.clone(), env.runtime.clone());
        let removed = ops.remove_expired_volumes().await?;
        if removed > 0 {
            tracing::info!(removed, "Removed data volumes whose keeping time was up");
        }
        Ok(())
    }
}
