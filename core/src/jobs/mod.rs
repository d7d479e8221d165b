//! Job definitions: what a kind of background work is called, which queue it runs on, its
//! payload and its de-duplication key. Running them is `berth_workers`' business; defining them
//! here lets any state change enqueue its own work on its own transaction, wherever it happens.
//!
//! A job is a serde struct implementing [`Job`] with a stable [`Job::NAME`] (never derived from
//! the type name, so renaming the struct cannot orphan queued rows). [`enqueue`] inserts it on
//! the transaction of the state change that needs it: both commit, or neither does.
//!
//! One file per family of jobs: [`alerts`], [`backup`], [`flow`] (the driver of flow runs), [`housekeeping`], [`metrics`], and, in
//! builds with the `testing` feature, [`demo`].

pub mod alerts;
pub mod backup;
#[cfg(feature = "testing")]
pub mod demo;
pub mod flow;
pub mod housekeeping;
pub mod metrics;

use sea_orm::ConnectionTrait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::store::jobs::{insert, NewJob};

/// A kind of background work, as stored in the `jobs` table.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Stored in every row of this kind: never change it once jobs of it may be queued.
    const NAME: &'static str;
    const QUEUE: &'static str = "default";
    /// Higher runs first within the queue.
    const PRIORITY: i32 = 0;
    const MAX_ATTEMPTS: i32 = 5;

    /// When `Some`, at most one job with this key is queued or running at a time; enqueueing
    /// another is a no-op. Schedules only enqueue de-duplicated jobs.
    fn dedup_key(&self) -> Option<String> {
        None
    }
}

/// Per-enqueue settings that are not part of the job's own data.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The customer the job works for (it then shows in that customer's job list).
    pub customer_id: Option<Uuid>,
    /// Not before this instant.
    pub run_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The cron tick that enqueued it.
    pub scheduled_for: Option<chrono::DateTime<chrono::Utc>>,
    /// The flow run the job drives.
    pub flow_run_id: Option<Uuid>,
    /// Overrides [`Job::MAX_ATTEMPTS`] (a flow's driver gets the flow's own budget).
    pub max_attempts: Option<i32>,
}

/// Enqueues `job` on `db` — the transaction of the state change that needs it, so both commit or
/// neither does. Returns the new job's id, or `None` when a job with the same de-duplication key
/// is already queued or running.
pub async fn enqueue<J: Job>(db: &impl ConnectionTrait, job: &J) -> Result<Option<Uuid>> {
    enqueue_with(db, job, Options::default()).await
}

/// [`enqueue`] with per-enqueue [`Options`].
pub async fn enqueue_with<J: Job>(db: &impl ConnectionTrait, job: &J, options: Options) -> Result<Option<Uuid>> {
    Ok(insert(db, vec![row(job, &options)?]).await?.into_iter().next())
}

/// Enqueues many jobs of one kind in one statement (same semantics as [`enqueue`]).
pub async fn enqueue_many<J: Job>(db: &impl ConnectionTrait, jobs: &[J], options: Options) -> Result<Vec<Uuid>> {
    let rows = jobs.iter().map(|j| row(j, &options)).collect::<Result<Vec<_>>>()?;
    insert(db, rows).await
}

/// The row `job` is stored as.
pub fn row<J: Job>(job: &J, options: &Options) -> Result<NewJob> {
    let payload = serde_json::to_value(job)
        .map_err(|e| Error::Internal(anyhow::anyhow!("job `{}` does not serialise: {e}", J::NAME)))?;
    Ok(NewJob {
        kind: J::NAME.to_owned(),
        queue: J::QUEUE.to_owned(),
        priority: J::PRIORITY,
        payload,
        max_attempts: options.max_attempts.unwrap_or(J::MAX_ATTEMPTS),
        dedup_key: job.dedup_key(),
        customer_id: options.customer_id,
        flow_run_id: options.flow_run_id,
        scheduled_for: options.scheduled_for,
        run_at: options.run_at,
    })
}
