//! The onboarding flow: the steps of [`super::steps`] in order, driven by the flow engine.

use async_trait::async_trait;
use berth_core::entities::flow_runs;
use berth_core::store::flows::{self, NewRun};
use sea_orm::ConnectionTrait;

use super::{steps, Edges, Subject};
use crate::flows::{Flow, StepContext};

pub const NAME: &str = "onboarding";
/// Step 1 (`customer`) happened in the signup's own transaction; it is recorded so the timeline
/// shows the whole journey. Never rename a step: names are part of idempotency keys.
pub const STEPS: [&str; 7] = ["customer", "site", "dns", "certificate", "health", "welcome", "finish"];

pub struct OnboardingFlow {
    pub edges: Edges,
}

#[async_trait]
impl Flow for OnboardingFlow {
    const NAME: &'static str = NAME;
    /// Each attempt resumes at the failed step, and a crashed worker costs one: onboarding waits
    /// on several outside systems (Docker, DNS, the CA, SMTP), so it gets more than the default.
    const MAX_ATTEMPTS: i32 = 12;
    type Input = Subject;

    fn steps(&self) -> Vec<&'static str> {
        STEPS.to_vec()
    }

    async fn step(&self, ctx: &StepContext, subject: &Subject) -> anyhow::Result<()> {
        crash_if_asked(ctx);
        let summary = match ctx.step.as_str() {
            "customer" => "created with the signup".to_owned(),
            "site" => steps::site(&self.edges, subject).await?,
            "dns" => steps::dns(&self.edges, subject).await?,
            "certificate" => steps::certificate(&self.edges, subject).await?,
            "health" => steps::health(&self.edges, subject).await?,
            // The idempotency key is the same on every attempt: one message id per run.
            "welcome" => steps::welcome(&self.edges, subject, &format!("<{}@berth>", ctx.idempotency_key)).await?,
            "finish" => steps::finish(&self.edges, subject).await?,
            other => anyhow::bail!("onboarding has no step `{other}`"),
        };
        tracing::info!(flow.run = %ctx.run_id, step = %ctx.step, %summary, "Onboarding step done");
        Ok(())
    }
}

/// Test-only fault injection: with `BERTH_FAULT_CRASH_BEFORE_STEPS=dns,welcome`, the process
/// dies abruptly (as `kill -9` would leave it) when one of those steps starts its first
/// attempt, i.e. at the boundary after the previous step was recorded. The crash-safety tests
/// use it to prove a restarted worker resumes there and no effect happens twice. Unset in any
/// real deployment.
fn crash_if_asked(ctx: &StepContext) {
    let Ok(steps) = std::env::var("BERTH_FAULT_CRASH_BEFORE_STEPS") else { return };
    if ctx.attempt == 1 && steps.split(',').any(|s| s.trim() == ctx.step) {
        eprintln!("fault injection: crashing before onboarding step `{}`", ctx.step);
        std::process::abort();
    }
}

/// Starts onboarding for `subject` inside `db` — the signup's transaction, so the customer and
/// their onboarding commit together or not at all.
pub async fn start(db: &impl ConnectionTrait, subject: &Subject) -> berth_core::Result<flow_runs::Model> {
    let input = serde_json::to_value(subject).map_err(|e| berth_core::Error::Internal(e.into()))?;
    flows::create(
        db,
        NewRun {
            kind: NAME.to_owned(),
            steps: STEPS.iter().map(|s| (*s).to_owned()).collect(),
            input,
            customer_id: Some(subject.customer_id),
            max_attempts: <OnboardingFlow as Flow>::MAX_ATTEMPTS,
        },
    )
    .await
}
