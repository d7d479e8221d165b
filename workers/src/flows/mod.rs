//! Flows: an ordered list of idempotent steps, driven by one job (`flow.run`).
//!
//! Each step's start, end, attempts and error are recorded in `flow_steps`. The driver skips
//! steps already succeeded, so a crash resumes at the step that was running; that step runs
//! again with the same idempotency key (`<run id>:<step>`), which the step uses to make its
//! effect happen once (an upsert by that key, an existence check, a provider's idempotency
//! header). The engine guarantees: a succeeded step never runs again, and every step write is
//! fenced by the driver job's lease.

pub mod demo;
pub mod driver;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use berth_core::entities::flow_runs;
use berth_core::store::flows::NewRun;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// What a step knows while it runs.
pub struct StepContext {
    pub db: DatabaseConnection,
    pub run_id: Uuid,
    pub customer_id: Option<Uuid>,
    pub step: String,
    /// The same on every attempt of this step of this run.
    pub idempotency_key: String,
    /// 1 on the first attempt (a crash-resume counts as another).
    pub attempt: i32,
}

#[async_trait]
pub trait Flow: Send + Sync + 'static {
    /// Stored in every run: never change it once runs of it may exist.
    const NAME: &'static str;
    /// Attempts of the driver job per run; each attempt resumes at the step that failed.
    const MAX_ATTEMPTS: i32 = berth_core::store::flows::DRIVER_MAX_ATTEMPTS;
    type Input: Serialize + DeserializeOwned + Send + Sync;

    /// Step names, in order. Names are part of the idempotency keys: never rename one that may
    /// be in flight.
    fn steps(&self) -> Vec<&'static str>;

    async fn step(&self, ctx: &StepContext, input: &Self::Input) -> anyhow::Result<()>;
}

type StepFn = Arc<
    dyn Fn(StepContext, Value) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>
        + Send
        + Sync,
>;

/// A registered flow with its type erased, for the driver.
#[derive(Clone)]
pub struct Registered {
    pub name: &'static str,
    pub steps: Vec<&'static str>,
    run: StepFn,
}

impl Registered {
    pub(crate) async fn step(&self, ctx: StepContext, input: Value) -> anyhow::Result<()> {
        (self.run)(ctx, input).await
    }
}

/// The flows a worker can drive, by name.
#[derive(Clone, Default)]
pub struct FlowRegistry {
    flows: HashMap<&'static str, Registered>,
}

impl FlowRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register<F: Flow>(mut self, flow: F) -> Self {
        let steps = flow.steps();
        let flow = Arc::new(flow);
        let run: StepFn = Arc::new(move |ctx, input| {
            let flow = flow.clone();
            Box::pin(async move {
                let input: F::Input = serde_json::from_value(input)
                    .map_err(|e| anyhow::anyhow!("input does not match flow `{}`: {e}", F::NAME))?;
                flow.step(&ctx, &input).await
            })
        });
        self.flows.insert(F::NAME, Registered { name: F::NAME, steps, run });
        self
    }

    pub fn get(&self, name: &str) -> Option<&Registered> {
        self.flows.get(name)
    }
}

/// Starts a run of `F` on `db` — the transaction of the state change that needs it: the run, its
/// steps and its driver job commit together or not at all.
pub async fn start<F: Flow>(
    db: &impl ConnectionTrait,
    flow: &F,
    input: &F::Input,
    customer_id: Option<Uuid>,
) -> Result<flow_runs::Model, berth_core::Error> {
    let input = serde_json::to_value(input)
        .map_err(|e| berth_core::Error::Internal(anyhow::anyhow!("flow input does not serialise: {e}")))?;
    berth_core::store::flows::create(
        db,
        NewRun {
            kind: F::NAME.to_owned(),
            steps: flow.steps().into_iter().map(str::to_owned).collect(),
            input,
            customer_id,
            max_attempts: F::MAX_ATTEMPTS,
        },
    )
    .await
}
