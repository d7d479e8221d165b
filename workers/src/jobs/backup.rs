//! Runs `backup.site` (defined in `berth_core::jobs::backup`): reads the site's data volume while
//! the site keeps serving (the container is never stopped), writes a snapshot into the
//! customer's repository, reads every blob of it back, and only then marks the row `succeeded`
//! with `verified = true`. Any failure marks it `failed` with the error and fails the job, so the
//! queue retries it; a worker killed half-way leaves the row `running` (never complete) and its
//! lease expires into the next attempt. A snapshot that a killed attempt already wrote carries
//! the tag `backup:<id>`: the next attempt verifies it instead of writing another.
//!
//! Also runs `backup.prune` (GFS retention: forget and prune, rows marked `pruned`) and
//! `backup.check` (each customer's repository checked, the outcome recorded).

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use async_trait::async_trait;
use berth_backup::{ReadData, SnapshotMeta};
use berth_core::access::Caller;
use berth_core::backup_retention::{self as retention, Outcome, SiteBackup};
use berth_core::entities::{backups, sites};
use berth_core::jobs::backup::{BackupSite, CheckBackups, PruneBackups};
use berth_core::store::backup_checks as checks;
use berth_core::store::backups::{self as store};
use berth_core::types::{BackupKind, BackupStatus};
use sea_orm::{ActiveEnum, EntityTrait};
use uuid::Uuid;

use crate::queue::{JobContext, RunJob};
use crate::Env;

#[async_trait]
impl RunJob for BackupSite {
    #[tracing::instrument(name = "backup.site", skip_all, fields(backup.id = %self.backup_id, attempt = ctx.attempt), err)]
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let env = ctx.env.as_ref();
        // Missing (deleted with its customer) or already succeeded: nothing left to do.
        let Some(row) = store::start(ctx.db(), self.backup_id).await? else { return Ok(()) };
        match back_up(env, &row, ctx.attempt).await {
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

// `attempt` is read only by the fault injection of test builds.
#[cfg_attr(not(feature = "testing"), allow(unused_variables))]
async fn back_up(env: &Env, row: &backups::Model, attempt: i32) -> anyhow::Result<store::Outcome> {
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
            let written = repo.backup(source, meta).await.context("writing the snapshot")?;
            #[cfg(feature = "testing")]
            pause_if_asked(row.id, attempt).await;
            written
        }
    };
    let manifest = repo.verify(&snapshot.id).await.context("reading the new snapshot back")?;
    Ok(store::Outcome {
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

/// Fault injection for the kill-the-worker test, compiled only into test builds (the `testing`
/// feature): with `BERTH_FAULT_BACKUP_PAUSE_SECONDS=n`, the first attempt of a backup stops for
/// `n` seconds after its snapshot is written and before it is read back, so the test can kill
/// the process there.
#[cfg(feature = "testing")]
async fn pause_if_asked(backup_id: uuid::Uuid, attempt: i32) {
    let Some(seconds) = std::env::var("BERTH_FAULT_BACKUP_PAUSE_SECONDS").ok().and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    if attempt == 1 {
        eprintln!("fault injection: backup {backup_id} paused after writing its snapshot");
        tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
    }
}

#[async_trait]
impl RunJob for PruneBackups {
    #[tracing::instrument(name = "backup.prune", skip_all, err)]
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let env = ctx.env.as_ref();
        let now = chrono::Utc::now();
        let customers = store::customers_with_backups(ctx.db()).await?;
        let mut failed = Vec::new();
        for customer in &customers {
            // One repository that cannot be pruned (unreachable, damaged) must not hold up the rest.
            match prune_customer(env, *customer, now).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(customer.id = %customer, pruned, "Backups pruned by retention"),
                Err(e) => {
                    tracing::warn!(customer.id = %customer, error = format!("{e:#}"), "Could not prune a backup repository");
                    failed.push(format!("customer {customer}: {e:#}"));
                }
            }
        }
        if !failed.is_empty() {
            anyhow::bail!(
                "{} of {} repositories were not pruned: {}",
                failed.len(),
                customers.len(),
                failed.join("; ")
            );
        }
        Ok(())
    }
}

/// Applies retention to one customer's backups; returns how many rows it marked `pruned`.
async fn prune_customer(env: &Env, customer_id: Uuid, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<usize> {
    let found = store::for_retention(&env.db, customer_id).await?;
    let keep_pre_restore = chrono::Duration::days(i64::try_from(env.config.runtime.retired_volume_keep_days)?);
    let mut by_site: HashMap<Uuid, Vec<&backups::Model>> = HashMap::new();
    for row in &found.rows {
        by_site.entry(row.site_id).or_default().push(row);
    }
    let mut doomed: Vec<&backups::Model> = Vec::new();
    for (site_id, rows) in &by_site {
        let policy = found.policy_of_site.get(site_id).copied().unwrap_or(found.plan_policy);
        let view: Vec<SiteBackup<Uuid>> = rows
            .iter()
            .map(|r| SiteBackup {
                backup: retention::Backup { id: r.id, at: r.created_at, outcome: outcome_of(r) },
                pre_restore: r.kind == BackupKind::PreRestore,
            })
            .collect();
        let dropped = retention::prune_site(&policy, &view, keep_pre_restore, now);
        // The rule that matters most, checked here again whatever the retention code says: the
        // newest good backup of a site is never removed, nor anything not finished.
        let newest_good =
            rows.iter().filter(|r| outcome_of(r) == Outcome::Good && r.created_at <= now).max_by_key(|r| r.created_at);
        for id in &dropped {
            let Some(row) = rows.iter().find(|r| r.id == *id) else { continue };
            let unfinished = outcome_of(row) == Outcome::Running || row.created_at > now;
            if newest_good.is_some_and(|g| g.id == row.id) || unfinished {
                anyhow::bail!(
                    "retention chose backup {} of site {site_id}, which must be kept; nothing was pruned",
                    row.id
                );
            }
            doomed.push(*row);
        }
    }
    if doomed.is_empty() {
        return Ok(0);
    }
    let repo = env.backups.repository(customer_id);
    let snapshots = repo.snapshots().await.context("listing the repository's snapshots")?;
    // Snapshots that must stay: those of every kept row, and any a queued or running backup may
    // have written already (found by its tag).
    let dropped_ids: HashSet<Uuid> = doomed.iter().map(|r| r.id).collect();
    let kept: Vec<&backups::Model> = found.rows.iter().filter(|r| !dropped_ids.contains(&r.id)).collect();
    let protected: HashSet<String> = snapshots
        .iter()
        .filter(|s| {
            kept.iter().any(|r| {
                r.snapshot_id.as_deref() == Some(s.id.as_str()) || s.tags.contains(&format!("backup:{}", r.id))
            })
        })
        .map(|s| s.id.clone())
        .collect();
    let forget: Vec<String> = snapshots
        .iter()
        .filter(|s| {
            doomed.iter().any(|r| {
                r.snapshot_id.as_deref() == Some(s.id.as_str()) || s.tags.contains(&format!("backup:{}", r.id))
            })
        })
        .map(|s| s.id.clone())
        .collect();
    if let Some(shared) = forget.iter().find(|id| protected.contains(*id)) {
        anyhow::bail!("snapshot {shared} belongs to a backup that is kept; nothing was pruned");
    }
    if !forget.is_empty() {
        repo.forget(&forget).await.context("forgetting snapshots")?;
        // A backup writing into the repository right now: its new data is not indexed yet, so
        // the space is reclaimed by the next run instead (forgetting is safe meanwhile).
        let jobs: Vec<Uuid> = found.rows.iter().filter_map(|r| r.job_id).collect();
        if store::any_job_running(&env.db, &jobs).await? {
            tracing::info!(customer.id = %customer_id, "A backup is running; the repository is pruned next time");
        } else {
            repo.prune().await.context("pruning the repository")?;
        }
    }
    let ids: Vec<Uuid> = doomed.iter().map(|r| r.id).collect();
    store::mark_pruned(&env.db, &Caller::system("backups"), customer_id, &ids, forget.len()).await?;
    Ok(ids.len())
}

/// What retention knows of a row: only a succeeded, verified backup is good.
fn outcome_of(row: &backups::Model) -> Outcome {
    match row.status {
        BackupStatus::Succeeded if row.verified && row.snapshot_id.is_some() => Outcome::Good,
        BackupStatus::Queued | BackupStatus::Running => Outcome::Running,
        _ => Outcome::Failed,
    }
}

#[async_trait]
impl RunJob for CheckBackups {
    #[tracing::instrument(name = "backup.check", skip_all, err)]
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        use chrono::Datelike;
        let env = ctx.env.as_ref();
        // Day n of 7 reads the n-th seventh of the packs: every pack once a week.
        let part = chrono::Utc::now().ordinal() % 7 + 1;
        let customers = match self.customer_id {
            Some(c) => vec![c],
            None => store::customers_with_backups(ctx.db()).await?,
        };
        // A repository whose last check failed is read in full: only a clean read of all of it
        // clears the alert, not another day's seventh that may miss the damage.
        let failing = checks::failing_customers(ctx.db()).await?;
        let mut failed = 0;
        for customer_id in customers {
            let (read, label) = if self.full || failing.contains(&customer_id) {
                (ReadData::All, "all".to_owned())
            } else {
                (ReadData::Part(part, 7), format!("part {part}/7"))
            };
            let started_at = chrono::Utc::now();
            let result = env.backups.repository(customer_id).check(read).await;
            let error = result.err().map(|e| e.to_string());
            if let Some(e) = &error {
                failed += 1;
                tracing::warn!(customer.id = %customer_id, read = label, error = e, "A backup repository failed its check");
            }
            let outcome = checks::Outcome { customer_id, read_data: label, started_at, error };
            checks::record(ctx.db(), outcome).await?;
        }
        let before = chrono::Utc::now() - chrono::Duration::days(checks::KEEP_DAYS);
        let pruned = checks::prune(ctx.db(), before).await?;
        tracing::info!(part, failed, pruned, "Backup repositories checked");
        Ok(())
    }
}
