//! The durable job queue.
//!
//! Jobs are *defined* in `berth_core::jobs` (name, queue, payload, de-duplication key) and
//! enqueued there on the transaction of the state change that needs them; a worker *runs* them
//! through [`RunJob`], registered by name in a [`Registry`]. A [`pool::Pool`] claims jobs under a lease,
//! heartbeats it, and completes them; every write a worker makes names the lease id it was given
//! (the fencing token), so a worker that lost its lease cannot change the row any more.
//! docs/queue.md states the guarantees.

pub mod backoff;
pub mod metrics;
pub mod pool;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use berth_core::jobs::{Job, Options};
use berth_core::store::jobs::NewJob;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::Value;
use uuid::Uuid;

use crate::env::Env;
use crate::flows::FlowRegistry;

/// How a worker runs a job kind defined in `berth_core::jobs`.
#[async_trait]
pub trait RunJob: Job {
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()>;
}

/// What a running job knows about itself and can reach.
#[derive(Clone)]
pub struct JobContext {
    /// The worker environment: database, configuration, runtime, outside services.
    pub env: Arc<Env>,
    pub job_id: Uuid,
    /// The fencing token of this run; [`store::fence`] checks it inside a transaction.
    pub lease_id: Uuid,
    /// 1 on the first run.
    pub attempt: i32,
    pub max_attempts: i32,
    pub customer_id: Option<Uuid>,
    pub flow_run_id: Option<Uuid>,
    pub flows: Arc<FlowRegistry>,
}

impl JobContext {
    pub fn db(&self) -> &DatabaseConnection {
        &self.env.db
    }
}

/// Why a job could not be enqueued by name.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error("unknown job kind `{0}`")]
    UnknownKind(String),
    #[error("invalid job payload: {0}")]
    Payload(String),
    #[error(transparent)]
    Store(#[from] berth_core::Error),
}

type RunFn = Arc<
    dyn Fn(Value, JobContext) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>
        + Send
        + Sync,
>;
type RowFn = Arc<dyn Fn(Value, &Options) -> Result<NewJob, EnqueueError> + Send + Sync>;

/// A registered job kind, with its type erased so rows can be dispatched by name.
#[derive(Clone)]
pub struct Kind {
    pub name: &'static str,
    pub queue: &'static str,
    run: RunFn,
    row: RowFn,
}

/// The job kinds a worker runs, by name.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: HashMap<&'static str, Kind>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the handler for `J::NAME`.
    pub fn register<J: RunJob>(mut self) -> Self {
        let run: RunFn = Arc::new(|payload, ctx| {
            Box::pin(async move {
                let job: J = serde_json::from_value(payload)
                    .map_err(|e| anyhow::anyhow!("payload does not match job `{}`: {e}", J::NAME))?;
                job.run(&ctx).await
            })
        });
        let row: RowFn = Arc::new(|payload, options| {
            let job: J = serde_json::from_value(payload).map_err(|e| EnqueueError::Payload(e.to_string()))?;
            Ok(berth_core::jobs::row(&job, options)?)
        });
        self.kinds.insert(J::NAME, Kind { name: J::NAME, queue: J::QUEUE, run, row });
        self
    }

    pub fn get(&self, name: &str) -> Option<&Kind> {
        self.kinds.get(name)
    }

    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.kinds.keys().copied().collect();
        names.sort_unstable();
        names
    }

    /// A job row for `name` from a JSON payload, validated by the kind's own type: how schedules
    /// and `berth job enqueue NAME` enqueue without knowing the Rust type.
    pub fn row(&self, name: &str, payload: Value, options: &Options) -> Result<NewJob, EnqueueError> {
        let kind = self.get(name).ok_or_else(|| EnqueueError::UnknownKind(name.to_owned()))?;
        (kind.row)(payload, options)
    }
}

impl Kind {
    pub(crate) async fn run(&self, payload: Value, ctx: JobContext) -> anyhow::Result<()> {
        (self.run)(payload, ctx).await
    }
}

/// Enqueues a job by kind name with a JSON payload (validated by the kind's type), audited as
/// `job.enqueue`: how an operator runs a scheduled job by hand (`berth job enqueue NAME`).
pub async fn enqueue_by_name<C: ConnectionTrait + sea_orm::TransactionTrait>(
    db: &C,
    registry: &Registry,
    caller: &berth_core::access::Caller,
    name: &str,
    payload: Value,
    customer_id: Option<Uuid>,
) -> Result<Option<Uuid>, EnqueueError> {
    let options = Options { customer_id, ..Options::default() };
    let row = registry.row(name, payload, &options)?;
    let txn = db.begin().await.map_err(berth_core::Error::from)?;
    let id = berth_core::store::jobs::insert(&txn, vec![row]).await?.into_iter().next();
    if let Some(id) = id {
        berth_core::store::audit::record(
            &txn,
            caller,
            berth_core::store::audit::Event::new("job.enqueue", "job", id)
                .customer(customer_id)
                .details(serde_json::json!({ "kind": name })),
        )
        .await?;
    }
    txn.commit().await.map_err(berth_core::Error::from)?;
    Ok(id)
}
