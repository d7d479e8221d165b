//! Running flows. A flow's name, steps and input are defined in `berth_core::flows` and started
//! there; here each flow gets the code of its steps ([`RunFlow`]), and one job
//! ([`DriveFlow`](berth_core::jobs::flow::DriveFlow), run by [`driver`]) walks a run through them.
//!
//! Each step's start, end, attempts and error are recorded in `flow_steps`. The driver skips
//! steps already succeeded, so a crash resumes at the step that was running; that step runs
//! again with the same idempotency key (`<run id>:<step>`), which the step uses to make its
//! effect happen once (an upsert by that key, an existence check, a provider's idempotency
//! header). The engine guarantees: a succeeded step never runs again, and every step write is
//! fenced by the driver job's lease.

#[cfg(feature = "testing")]
pub mod demo;
pub mod driver;
pub mod onboarding;
pub mod restore;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use berth_core::flows::Flow;
use serde_json::Value;
use uuid::Uuid;

use crate::env::Env;

/// What a step knows while it runs.
pub struct StepContext {
    pub env: Arc<Env>,
    pub run_id: Uuid,
    pub customer_id: Option<Uuid>,
    pub step: String,
    /// The same on every attempt of this step of this run.
    pub idempotency_key: String,
    /// 1 on the first attempt (a crash-resume counts as another).
    pub attempt: i32,
}

/// The code of a flow's steps.
#[async_trait]
pub trait RunFlow: Flow {
    /// Runs the step named `ctx.step` (one of [`Flow::STEPS`]).
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
    pub steps: &'static [&'static str],
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

    pub fn register<F: RunFlow>(mut self, flow: F) -> Self {
        let flow = Arc::new(flow);
        let run: StepFn = Arc::new(move |ctx, input| {
            let flow = flow.clone();
            Box::pin(async move {
                let input: F::Input = serde_json::from_value(input)
                    .map_err(|e| anyhow::anyhow!("input does not match flow `{}`: {e}", F::NAME))?;
                flow.step(&ctx, &input).await
            })
        });
        self.flows.insert(F::NAME, Registered { name: F::NAME, steps: F::STEPS, run });
        self
    }

    pub fn get(&self, name: &str) -> Option<&Registered> {
        self.flows.get(name)
    }
}
