//! The steps of onboarding ([`Onboarding`], defined in `berth_core::flows::onboarding`) for a
//! customer who signed up on the website. The signup webhook has already created the customer,
//! their portal user and their site (step 1, in its own transaction); these are the steps after
//! it. Each step is idempotent — running it again after a crash converges to the same single
//! effect — and returns a one-line summary for the flow's timeline.

pub mod steps;

use async_trait::async_trait;
use berth_core::flows::onboarding::{Onboarding, Subject};

use super::{RunFlow, StepContext};

#[async_trait]
impl RunFlow for Onboarding {
    async fn step(&self, ctx: &StepContext, subject: &Subject) -> anyhow::Result<()> {
        #[cfg(feature = "testing")]
        crash_if_asked(ctx);
        let env = ctx.env.as_ref();
        let summary = match ctx.step.as_str() {
            "customer" => "created with the signup".to_owned(),
            "site" => steps::site(env, subject).await?,
            "dns" => steps::dns(env, subject).await?,
            "certificate" => steps::certificate(env, subject).await?,
            "health" => steps::health(env, subject).await?,
            // The idempotency key is the same on every attempt: one message id per run.
            "welcome" => steps::welcome(env, subject, &format!("<{}@berth>", ctx.idempotency_key)).await?,
            "finish" => steps::finish(env, subject).await?,
            other => anyhow::bail!("onboarding has no step `{other}`"),
        };
        tracing::info!(flow.run = %ctx.run_id, step = %ctx.step, %summary, "Onboarding step done");
        Ok(())
    }
}

/// Fault injection for the crash-safety tests, compiled only into test builds (the `testing`
/// feature): with `BERTH_FAULT_CRASH_BEFORE_STEPS=dns,welcome`, the process dies abruptly (as
/// `kill -9` would leave it) when one of those steps starts its first attempt, i.e. at the
/// boundary after the previous step was recorded. The tests use it to prove a restarted worker
/// resumes there and no effect happens twice.
#[cfg(feature = "testing")]
fn crash_if_asked(ctx: &StepContext) {
    let Ok(steps) = std::env::var("BERTH_FAULT_CRASH_BEFORE_STEPS") else { return };
    if ctx.attempt == 1 && steps.split(',').any(|s| s.trim() == ctx.step) {
        eprintln!("fault injection: crashing before onboarding step `{}`", ctx.step);
        std::process::abort();
    }
}
