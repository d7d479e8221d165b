//! Runs the demonstration jobs defined in `berth_core::jobs::demo` (no effect; for tests and the
//! queue benchmark). Test builds only.

use std::time::Duration;

use async_trait::async_trait;
use berth_core::flows::demo::DemoFlow;
use berth_core::jobs::demo::{Fail, Noop, Sleep, StartDemoFlow};

use crate::queue::{JobContext, RunJob};

#[async_trait]
impl RunJob for Noop {
    async fn run(&self, _ctx: &JobContext) -> anyhow::Result<()> {
        Ok(())
    }
}

#[async_trait]
impl RunJob for Sleep {
    async fn run(&self, _ctx: &JobContext) -> anyhow::Result<()> {
        tokio::time::sleep(Duration::from_millis(self.ms.min(600_000))).await;
        Ok(())
    }
}

#[async_trait]
impl RunJob for Fail {
    async fn run(&self, _ctx: &JobContext) -> anyhow::Result<()> {
        anyhow::bail!("{}", self.message)
    }
}

#[async_trait]
impl RunJob for StartDemoFlow {
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        berth_core::flows::start::<DemoFlow>(ctx.db(), &self.0, ctx.customer_id).await?;
        Ok(())
    }
}
