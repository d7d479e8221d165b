//! Restoring a site from one of its backups: the request (a `site.restore` flow run, started in
//! the transaction that checked the caller may see the site and the backup), and the steps'
//! operations the flow's runner (`berth_workers::flows::restore`) calls. The flow and its steps
//! are described in `berth_core::flows::restore` and docs/backups.md, "Restore".

use std::path::{Path, PathBuf};

use berth_backup::Manifest;
use berth_core::access::Caller;
use berth_core::entities::{backups, flow_runs};
use berth_core::flows::restore::{Restore, Subject};
use berth_core::flows::Flow;
use berth_core::store::audit::{self, Event};
use berth_core::store::{backups as backup_store, site_volumes};
use berth_core::types::BackupStatus;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::json;
use uuid::Uuid;

use crate::{Error, Ops, Result};

impl Ops {
    /// Starts restoring backup `backup_id` onto site `site_id`; returns the flow run. Scoped:
    /// another customer's site, or a backup that is not this site's, is not found. Only a
    /// succeeded (verified) backup can be restored, and one restore of a site runs at a time.
    pub async fn start_restore(&self, caller: &Caller, site_id: Uuid, backup_id: Uuid) -> Result<flow_runs::Model> {
        self.runtime()?;
        self.backups()?;
        let txn = self.db.begin().await?;
        let site = site_volumes::site(&txn, caller, site_id).await?;
        let backup = backup_store::get(&txn, caller, site_id, backup_id).await?;
        if backup.status == BackupStatus::Pruned {
            return Err(Error::Store(berth_core::Error::Conflict(format!(
                "backup {backup_id} was removed by the retention policy; its data is no longer kept"
            ))));
        }
        if backup.status != BackupStatus::Succeeded || backup.snapshot_id.is_none() {
            return Err(Error::Store(berth_core::Error::Conflict(format!(
                "backup {backup_id} has not succeeded; only a verified backup can be restored"
            ))));
        }
        let running = flow_runs::Entity::find()
            .filter(flow_runs::Column::Kind.eq(Restore::NAME))
            .filter(flow_runs::Column::CustomerId.eq(site.customer_id))
            .filter(flow_runs::Column::FinishedAt.is_null())
            .all(&txn)
            .await?;
        let busy = running.iter().any(|r| {
            serde_json::from_value::<Subject>(r.input.clone()).is_ok_and(|s| s.site_id == site_id)
                && r.state != berth_core::entities::flow_runs::FlowState::Failed
        });
        if busy {
            return Err(Error::Store(berth_core::Error::Conflict("a restore of this site is already running".into())));
        }
        let subject = Subject {
            site_id,
            customer_id: site.customer_id,
            backup_id,
            from_volume: site.data_volume.clone(),
            generation: Uuid::now_v7().simple().to_string()[20..].to_owned(),
            requested_by: caller.actor.clone(),
        };
        let run = berth_core::flows::start::<Restore>(&txn, &subject, Some(site.customer_id)).await?;
        audit::record(
            &txn,
            caller,
            Event::new("site.restore", "site", site_id)
                .customer(Some(site.customer_id))
                .details(json!({"backup_id": backup_id, "flow_run_id": run.id, "from_volume": subject.from_volume})),
        )
        .await?;
        txn.commit().await?;
        self.reconcile_soon();
        Ok(run)
    }

    /// The backup a restore run restores, checked to be the run's site's and succeeded: a row of
    /// another site or customer is refused as foreign.
    pub async fn restore_backup(&self, subject: &Subject) -> Result<(backups::Model, String)> {
        let backup =
            backup_store::find(&self.db, subject.backup_id).await?.ok_or(berth_core::Error::NotFound("backup"))?;
        if backup.site_id != subject.site_id || backup.customer_id != subject.customer_id {
            return Err(Error::Restore(format!("backup {} is not a backup of this site; refused", backup.id)));
        }
        let snapshot = match (&backup.status, &backup.snapshot_id) {
            (BackupStatus::Succeeded, Some(s)) => s.clone(),
            _ => return Err(Error::Restore(format!("backup {} has not succeeded; refused", backup.id))),
        };
        Ok((backup, snapshot))
    }

    /// Step `verify`: the snapshot is in the site's customer's repository (opened with that
    /// customer's key: another customer's snapshot is not there), is labelled as this site's,
    /// every blob decrypts and reads back intact, and what it holds is what the backup recorded.
    /// Touches nothing.
    pub async fn verify_restore(&self, subject: &Subject) -> Result<Manifest> {
        let (backup, snapshot) = self.restore_backup(subject).await?;
        let repo = self.backups()?.repository(subject.customer_id);
        let label = format!("site-{}", subject.site_id);
        let info = repo
            .snapshots()
            .await
            .map_err(|e| Error::Restore(format!("cannot list the repository: {e}")))?
            .into_iter()
            .find(|s| s.id == snapshot);
        match info {
            None => {
                return Err(Error::Restore(format!(
                    "snapshot {snapshot} is not in this customer's repository; refused"
                )))
            }
            Some(info) if info.label != label => {
                return Err(Error::Restore(format!(
                    "snapshot {snapshot} is labelled `{}`, not `{label}`: it is not this site's; refused",
                    info.label
                )))
            }
            Some(_) => {}
        }
        let manifest =
            repo.verify(&snapshot).await.map_err(|e| Error::Restore(format!("{e}; the site was not touched")))?;
        if let Some(recorded) = &backup.manifest_sha256 {
            if *recorded != manifest.digest() {
                return Err(Error::Restore(format!(
                    "snapshot {snapshot} does not hold what backup {} recorded; refused, the site was not touched",
                    backup.id
                )));
            }
        }
        Ok(manifest)
    }

    /// Step `fill`: the snapshot restored into a fresh volume of the site (the run's generation),
    /// through a staging directory whose top takes the owner and mode of the volume the site
    /// uses now; then proved: the volume holds exactly the snapshot's files, byte for byte.
    pub async fn fill_from_backup(&self, caller: &Caller, subject: &Subject, run_id: Uuid) -> Result<String> {
        let (_, snapshot) = self.restore_backup(subject).await?;
        let backups = self.backups()?.clone();
        let fresh = self.fresh_volume(caller, subject.site_id, &subject.generation).await?;
        let staging = backups.dir().join(".staging").join(format!("restore-{run_id}"));
        let result = async {
            if staging.exists() {
                tokio::fs::remove_dir_all(&staging).await.map_err(|e| Error::Fill(e.to_string()))?;
            }
            tokio::fs::create_dir_all(&staging).await.map_err(|e| Error::Fill(e.to_string()))?;
            let repo = backups.repository(subject.customer_id);
            let manifest = repo
                .restore(&snapshot, &staging)
                .await
                .map_err(|e| Error::Restore(format!("{e}; the site was not touched")))?;
            self.match_current_top(subject, &staging).await?;
            self.fill_volume(caller, subject.site_id, &fresh, &staging).await?;
            self.prove_volume(&fresh, &manifest).await
        }
        .await;
        let _ = tokio::fs::remove_dir_all(&staging).await;
        result.map(|()| fresh)
    }

    /// Gives the staging directory's top the owner and mode of the volume the site uses now, so
    /// the site can write its volume after the restore as before.
    async fn match_current_top(&self, subject: &Subject, staging: &Path) -> Result<()> {
        let rt = self.runtime()?;
        let current = subject.from_volume.clone().unwrap_or_else(|| rt.names.volume(subject.site_id));
        let Some(mountpoint) = rt.engine.volume_mountpoint(&current).await? else { return Ok(()) };
        let staging = staging.to_owned();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let meta = std::fs::metadata(PathBuf::from(mountpoint))?;
            std::os::unix::fs::chown(&staging, Some(meta.uid()), Some(meta.gid()))?;
            std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        })
        .await
        .map_err(|e| Error::Fill(e.to_string()))?
        .map_err(|e| Error::Fill(format!("cannot match the volume's top directory: {e}")))
    }

    /// The volume holds exactly the snapshot's entries.
    async fn prove_volume(&self, volume: &str, expected: &Manifest) -> Result<()> {
        let rt = self.runtime()?;
        let mountpoint = rt
            .engine
            .volume_mountpoint(volume)
            .await?
            .ok_or_else(|| Error::Fill(format!("volume {volume} vanished")))?;
        let written = tokio::task::spawn_blocking(move || Manifest::of_dir(Path::new(&mountpoint)))
            .await
            .map_err(|e| Error::Fill(e.to_string()))?
            .map_err(|e| Error::Fill(e.to_string()))?;
        if written.digest() != expected.digest() {
            return Err(Error::Fill("the fresh volume does not hold exactly the snapshot's data".into()));
        }
        Ok(())
    }
}
