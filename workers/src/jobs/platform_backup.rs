//! Runs `backup.platform` (defined in `berth_core::jobs::platform_backup`).

use async_trait::async_trait;
use berth_core::backup_retention::Policy;
use berth_core::jobs::platform_backup::BackupPlatform;
use berth_core::platform_backup;

use crate::queue::{JobContext, RunJob};

#[async_trait]
impl RunJob for BackupPlatform {
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let env = &ctx.env;
        let dir = env.config.backup.platform_dir();
        let written = platform_backup::backup(&env.db, &env.config, &env.keys, &dir).await?;
        tracing::info!(
            path = %written.dir.display(),
            size = written.manifest.size,
            schema = %written.manifest.schema,
            "Platform backup written"
        );
        // Retention runs only after a good backup, so it can never leave fewer good copies.
        let deleted = platform_backup::prune(&dir, &env.keys, &Policy::DEFAULT, chrono::Utc::now()).await?;
        if !deleted.is_empty() {
            tracing::info!(deleted = deleted.len(), "Deleted platform backups that retention no longer keeps");
        }
        Ok(())
    }
}
