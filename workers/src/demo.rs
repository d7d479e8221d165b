//! Built-in demonstration job kinds: no effect, for tests, the benchmark and trying the queue
//! by hand (`berth job enqueue demo.noop`).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::flows::demo::{DemoFlow, DemoInput};
use crate::queue::{Job, JobContext};

/// Does nothing.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Noop {}

#[async_trait]
impl Job for Noop {
    const NAME: &'static str = "demo.noop";

    async fn run(&self, _ctx: &JobContext) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Sleeps `ms` milliseconds (at most ten minutes).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sleep {
    pub ms: u64,
}

#[async_trait]
impl Job for Sleep {
    const NAME: &'static str = "demo.sleep";

    async fn run(&self, _ctx: &JobContext) -> anyhow::Result<()> {
        tokio::time::sleep(Duration::from_millis(self.ms.min(600_000))).await;
        Ok(())
    }
}

/// Always fails with `message`, once: its single attempt makes it dead at once, ready for a
/// manual retry.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fail {
    pub message: String,
}

#[async_trait]
impl Job for Fail {
    const NAME: &'static str = "demo.fail";
    const MAX_ATTEMPTS: i32 = 1;

    async fn run(&self, _ctx: &JobContext) -> anyhow::Result<()> {
        anyhow::bail!("{}", self.message)
    }
}

/// Starts a run of the demo flow (its input as the payload).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct StartDemoFlow(pub DemoInput);

#[async_trait]
impl Job for StartDemoFlow {
    const NAME: &'static str = "demo.flow";

    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        crate::flows::start(&ctx.db, &DemoFlow, &self.0, ctx.customer_id).await?;
        Ok(())
    }
}
