//! Built-in maintenance jobs, enqueued by the built-in schedules (see `scheduler::builtins`).

use async_trait::async_trait;
use berth_core::entities::flow_runs::{self, FlowState};
use berth_core::entities::jobs::{self, JobState};
use berth_core::entities::password_tokens;
use chrono::Utc;
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};

use crate::queue::{Job, JobContext};

/// Deletes set-password links that expired, or were used, more than a day ago.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgePasswordLinks {}

#[async_trait]
impl Job for PurgePasswordLinks {
    const NAME: &'static str = "housekeeping.password_links";
    const QUEUE: &'static str = "short";

    fn dedup_key(&self) -> Option<String> {
        Some(Self::NAME.into())
    }

    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let n = purge_password_links(&ctx.db).await?;
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

/// Deletes finished jobs and succeeded flow runs older than `days`. Dead jobs and failed runs
/// stay until a person retries them or deletes them: they are the record of what went wrong.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    pub days: u32,
}

#[async_trait]
impl Job for Retention {
    const NAME: &'static str = "housekeeping.retention";
    const QUEUE: &'static str = "long";

    fn dedup_key(&self) -> Option<String> {
        Some(Self::NAME.into())
    }

    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let cutoff = Utc::now() - chrono::Duration::days(i64::from(self.days.max(1)));
        let jobs = jobs::Entity::delete_many()
            .filter(jobs::Column::State.eq(JobState::Done))
            .filter(jobs::Column::FinishedAt.lt(cutoff))
            .exec(&ctx.db)
            .await?
            .rows_affected;
        let runs = flow_runs::Entity::delete_many()
            .filter(flow_runs::Column::State.eq(FlowState::Succeeded))
            .filter(flow_runs::Column::FinishedAt.lt(cutoff))
            .exec(&ctx.db)
            .await?
            .rows_affected;
        if jobs + runs > 0 {
            tracing::info!(jobs, flow_runs = runs, days = self.days, "Removed old finished jobs and flow runs");
        }
        Ok(())
    }
}
