//! Runs `backup.drill` (defined in `berth_core::jobs::backup`): first cleans up after drills
//! that died, then picks the sites to drill (one named site, or a random sample of
//! `BERTH_BACKUP_DRILL_SITES` among the sites with a succeeded, verified backup), and drills
//! each one's newest good backup in turn through `berth_ops` (ops/src/drill.rs), recording a
//! `backup_drills` row per site: `running`, then `passed` or `failed`. A failed drill is a
//! finding, recorded and logged, not a failure of the job; the job fails only when it cannot
//! drill at all (no container runtime, the database unreachable).

use anyhow::Context;
use async_trait::async_trait;
use berth_core::jobs::backup::DrillBackups;
use berth_core::store::backup_drills as store;
use rand::seq::SliceRandom;

use crate::queue::{JobContext, RunJob};

#[async_trait]
impl RunJob for DrillBackups {
    #[tracing::instrument(name = "backup.drill", skip_all, fields(site.id = ?self.site_id), err)]
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let env = ctx.env.as_ref();
        env.runtime().context("a drill restores into a scratch container")?;
        let ops = env.ops();
        ops.sweep_drills().await.context("cleaning up after earlier drills")?;
        let mut candidates = store::newest_good(ctx.db(), self.site_id).await?;
        if self.site_id.is_none() {
            candidates.shuffle(&mut rand::thread_rng());
            candidates.truncate(env.config.backup.drill_sites as usize);
        }
        if candidates.is_empty() {
            tracing::info!("No site has a verified backup to drill");
            return Ok(());
        }
        let (mut passed, mut failed) = (0, 0);
        for backup in &candidates {
            let drill = store::start(ctx.db(), backup).await?;
            let finding = ops.drill(drill.id, backup).await;
            match &finding.error {
                None => {
                    passed += 1;
                    tracing::info!(
                        drill.id = %drill.id, site.id = %backup.site_id, backup.id = %backup.id,
                        files = finding.files, bytes = finding.bytes, "Restore drill passed"
                    );
                }
                Some(error) => {
                    failed += 1;
                    tracing::warn!(
                        drill.id = %drill.id, site.id = %backup.site_id, backup.id = %backup.id, error,
                        "Restore drill failed"
                    );
                }
            }
            store::finish(ctx.db(), drill.id, finding).await?;
        }
        tracing::info!(passed, failed, "Restore drills done");
        Ok(())
    }
}
