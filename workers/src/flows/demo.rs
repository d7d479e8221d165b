//! The steps of the `demo` flow ([`DemoFlow`]), defined in `berth_core::flows::demo`: each
//! step's effect is a file named after its idempotency key (see there). Test builds only.

use std::io::Write;
use std::time::Duration;

use async_trait::async_trait;
use berth_core::flows::demo::{DemoFlow, DemoInput};

use super::{RunFlow, StepContext};

#[async_trait]
impl RunFlow for DemoFlow {
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
