//! `demo`: a three-step flow with no real effect, for tests, benchmarks and trying the engine
//! by hand (`berth job enqueue demo.flow`).
//!
//! With `dir` set, each step's effect is a file named after its idempotency key, created only if
//! absent, and each attempt appends a line to `attempts.log` — so a test can see that a resumed
//! step ran twice while its effect happened once. `hold_step` makes that step wait, after its
//! effect, until `dir/release` exists (a place to kill the worker); `fail_step` fails that step
//! on its first `fail_attempts` attempts.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Flow, StepContext};

pub struct DemoFlow;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoInput {
    #[serde(default)]
    pub dir: Option<PathBuf>,
    #[serde(default)]
    pub hold_step: Option<String>,
    #[serde(default)]
    pub fail_step: Option<String>,
    #[serde(default)]
    pub fail_attempts: i32,
}

pub const STEPS: [&str; 3] = ["prepare", "work", "finish"];

#[async_trait]
impl Flow for DemoFlow {
    const NAME: &'static str = "demo";
    const MAX_ATTEMPTS: i32 = 2;
    type Input = DemoInput;

    fn steps(&self) -> Vec<&'static str> {
        STEPS.to_vec()
    }

    async fn step(&self, ctx: &StepContext, input: &DemoInput) -> anyhow::Result<()> {
        if input.fail_step.as_deref() == Some(ctx.step.as_str()) && ctx.attempt <= input.fail_attempts {
            anyhow::bail!("demo failure of step `{}` on attempt {}", ctx.step, ctx.attempt);
        }
        let Some(dir) = &input.dir else { return Ok(()) };
        let mut log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("attempts.log"))?;
        writeln!(log, "{} {}", ctx.step, ctx.attempt)?;
        // The effect, made idempotent by its key: created once, whatever the number of attempts.
        match std::fs::OpenOptions::new().write(true).create_new(true).open(dir.join(&ctx.idempotency_key)) {
            Ok(mut f) => f.write_all(ctx.step.as_bytes())?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
        if input.hold_step.as_deref() == Some(ctx.step.as_str()) {
            while !dir.join("release").exists() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }
}
