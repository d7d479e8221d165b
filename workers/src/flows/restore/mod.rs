//! The steps of a restore ([`Restore`], defined in `berth_core::flows::restore`). Each calls
//! one operation of `berth_ops` (`restore.rs`, `volumes.rs`), which the API and the console
//! share; each is idempotent, so a crash resumes at the step that was running:
//! - `verify` touches nothing;
//! - `pre_restore` finds the `pre_restore` backup it asked for on an earlier attempt (by the
//!   run's time) instead of asking again, and waits for it: the restore goes on only once the
//!   current data is safely backed up and verified;
//! - `fill` makes (or finds) the run's fresh volume and fills it again from the snapshot;
//! - `switch` is a compare-and-set from the volume the run started from, so a resumed switch
//!   waits for the outcome of the first;
//! - `keep_old` records the old volume once.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use berth_core::access::Caller;
use berth_core::entities::{backups, flow_runs, sites};
use berth_core::flows::restore::{Restore, Subject};
use berth_core::store::site_volumes;
use berth_core::types::{BackupKind, BackupStatus};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::{RunFlow, StepContext};

/// How long `pre_restore` waits for its backup (it reads the whole volume and reads the
/// snapshot back).
const PRE_RESTORE_TIMEOUT: Duration = Duration::from_secs(3600);

#[async_trait]
impl RunFlow for Restore {
    async fn step(&self, ctx: &StepContext, s: &Subject) -> anyhow::Result<()> {
        let env = ctx.env.as_ref();
        let ops = env.ops();
        let caller = Caller::system(&format!("restore (asked by {})", s.requested_by));
        let summary = match ctx.step.as_str() {
            "verify" => {
                let manifest = ops.verify_restore(s).await?;
                format!("snapshot verified: {} files, {} bytes", manifest.file_count(), manifest.total_bytes())
            }
            "pre_restore" => pre_restore(env, &ops, &caller, s, ctx.run_id).await?,
            "fill" => {
                let volume = ops.fill_from_backup(&caller, s, ctx.run_id).await?;
                format!("restored into the fresh volume {volume}")
            }
            "switch" => {
                let fresh = env.runtime()?.names.fresh_volume(s.site_id, &s.generation);
                let done = ops.switch_volume(&caller, s.site_id, s.from_volume.as_deref(), &fresh, "restore").await?;
                format!("the site serves from {} (health-checked: {})", done.to, done.checked)
            }
            "keep_old" => {
                let rt = env.runtime()?;
                let old = s.from_volume.clone().unwrap_or_else(|| rt.names.volume(s.site_id));
                let site = sites::Entity::find_by_id(s.site_id)
                    .one(&env.db)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("the site is gone"))?;
                let keep_until = chrono::Utc::now() + chrono::Duration::from_std(rt.retired_volume_keep)?;
                let row =
                    site_volumes::retire(&env.db, &site, &old, site_volumes::REPLACED_BY_RESTORE, keep_until).await?;
                format!("kept the old volume {} until {}", row.name, row.keep_until)
            }
            other => anyhow::bail!("restore has no step `{other}`"),
        };
        tracing::info!(flow.run = %ctx.run_id, site.id = %s.site_id, step = %ctx.step, %summary, "Restore step done");
        Ok(())
    }
}

/// Backs up the current data (kind `pre_restore`, through the same `backup.site` job as every
/// backup) and waits until it succeeded.
async fn pre_restore(
    env: &crate::Env,
    ops: &berth_ops::Ops,
    caller: &Caller,
    s: &Subject,
    run_id: uuid::Uuid,
) -> anyhow::Result<String> {
    let run = flow_runs::Entity::find_by_id(run_id).one(&env.db).await?.ok_or_else(|| anyhow::anyhow!("run gone"))?;
    // An earlier attempt of this run asked already: wait for that one.
    let earlier = backups::Entity::find()
        .filter(backups::Column::SiteId.eq(s.site_id))
        .filter(backups::Column::Kind.eq(BackupKind::PreRestore))
        .filter(backups::Column::CreatedAt.gte(run.created_at))
        .order_by_desc(backups::Column::CreatedAt)
        .one(&env.db)
        .await?;
    let backup = match earlier {
        Some(b) if b.status != BackupStatus::Failed => b,
        _ => ops.request_backup(caller, s.site_id, BackupKind::PreRestore).await?.backup,
    };
    let deadline = Instant::now() + PRE_RESTORE_TIMEOUT;
    loop {
        let row = backups::Entity::find_by_id(backup.id)
            .one(&env.db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the pre-restore backup vanished"))?;
        match row.status {
            BackupStatus::Succeeded => return Ok(format!("the current data is backed up (backup {})", row.id)),
            BackupStatus::Failed => anyhow::bail!(
                "the backup of the current data failed ({}); nothing was restored",
                row.error.unwrap_or_default()
            ),
            _ if Instant::now() > deadline => anyhow::bail!("the backup of the current data did not finish in time"),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
