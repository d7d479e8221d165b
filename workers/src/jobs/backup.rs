//! Runs `backup.site` (defined in `berth_core::jobs::backup`): reads the site's data volume while
//! the site keeps serving (the container is never stopped), writes a snapshot into the
//! customer's repository, reads every blob of it back, and only then marks the row `succeeded`
//! with `verified = true`. Any failure marks it `failed` with the error and fails the job, so the
//! queue retries it; a worker killed half-way leaves the row `running` (never complete) and its
//! lease expires into the next attempt. A snapshot that a killed attempt already wrote carries
//! the tag `backup:<id>`: the next attempt verifies it instead of writing another.

use anyhow::Context;
use async_trait::async_trait;
use berth_backup::SnapshotMeta;
use berth_core::entities::{backups, sites};
use berth_core::jobs::backup::BackupSite;
use berth_core::store::backups::{self as store, Outcome};
use sea_orm::{ActiveEnum, EntityTrait};

use crate::queue::{JobContext, RunJob};
use crate::Env;

#[async_trait]
impl RunJob for BackupSite {
    #[tracing::instrument(name = "backup.site", skip_all, fields(backup.id = %self.backup_id, attempt = ctx.attempt), err)]
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let env = ctx.env.as_ref();
        // Missing (deleted with its customer) or already succeeded: nothing left to do.
        let Some(row) = store::start(ctx.db(), self.backup_id).await? else { return Ok(()) };
        match back_up(env, &row).await {
            Ok(outcome) => {
                let (snapshot, bytes, added) = (outcome.snapshot_id.clone(), outcome.size_bytes, outcome.added_bytes);
                store::succeed(ctx.db(), row.id, outcome).await?;
                tracing::info!(site.id = %row.site_id, snapshot, bytes, added, "Site backed up and verified");
                Ok(())
            }
            Err(e) => {
                store::fail(ctx.db(), row.id, &format!("{e:#}")).await?;
                Err(e)
            }
        }
    }
}

async fn back_up(env: &Env, row: &backups::Model) -> anyhow::Result<Outcome> {
    let runtime = env
        .runtime
        .as_ref()
        .context("no container runtime is configured (BERTH_DOCKER_HOST is off), so there is no volume to back up")?;
    let repo = env.backups.repository(row.customer_id);
    let tag = format!("backup:{}", row.id);
    let written = repo.snapshots().await?.into_iter().find(|s| s.tags.contains(&tag));
    let snapshot = match written {
        Some(snapshot) => {
            tracing::info!(snapshot = snapshot.id, "An earlier attempt wrote this backup's snapshot; verifying it");
            snapshot
        }
        None => {
            // The volume the site uses now (a restore may have moved it onto a fresh one).
            let site = sites::Entity::find_by_id(row.site_id).one(&env.db).await?.context("the site is gone")?;
            let source = berth_ops::backups::volume_source(
                runtime,
                env.engine_is_local(),
                row.site_id,
                site.data_volume.as_deref(),
            )
            .await?;
            let meta = SnapshotMeta {
                label: format!("site-{}", row.site_id),
                tags: vec![tag, format!("site:{}", row.site_id), format!("kind:{}", row.kind.to_value())],
            };
            repo.backup(source, meta).await.context("writing the snapshot")?
        }
    };
    let manifest = repo.verify(&snapshot.id).await.context("reading the new snapshot back")?;
    Ok(Outcome {
        snapshot_id: snapshot.id,
        size_bytes: manifest.total_bytes(),
        added_bytes: snapshot.added_bytes,
        file_count: manifest.file_count(),
        manifest_sha256: manifest.digest(),
    })
}

#[async_trait]
impl RunJob for berth_core::jobs::backup::ScheduleBackups {
    #[tracing::instrument(name = "backup.schedule", skip_all, err)]
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let env = ctx.env.as_ref();
        let due = store::due(ctx.db(), chrono::Utc::now()).await?;
        let ops = env.ops();
        let caller = berth_core::access::Caller::system("backups");
        let mut failed = 0;
        for (site_id, kind) in &due {
            // One site that cannot be backed up (being deleted meanwhile) must not hold up the rest.
            if let Err(e) = ops.request_backup(&caller, *site_id, *kind).await {
                failed += 1;
                tracing::warn!(site.id = %site_id, error = %e, "Could not queue a scheduled backup");
            }
        }
        if !due.is_empty() {
            tracing::info!(queued = due.len() - failed, failed, "Scheduled backups queued");
        }
        Ok(())
    }
}
