//! Restore drills: proving, now and then, that a site's newest good backup restores into data
//! that boots, file for file and byte for byte what the backup recorded (docs/backups.md,
//! "Integrity and drills"). The `backup.drill` job picks the sites and records each result;
//! this is the one place that does a drill of one backup, asks for drills and lists them, for
//! the API, the console and the job alike.
//!
//! A drill never touches the site: it restores into a **scratch volume** and starts a
//! **scratch container** on it, the site's own hardened definition on no network at all
//! ([`berth_runtime::spec::scratch`]), both named `<prefix>-drill-<drill id>` and labelled with
//! the drill and an expiry. It always removes both, whatever happened. A drill whose worker
//! died leaves them behind: the reconciler's orphan pass removes the container once it expired,
//! and the next drill ([`Ops::sweep_drills`]) removes every scratch object of a drill that is
//! no longer running.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_backup::{EntryKind, Manifest};
use berth_core::access::Caller;
use berth_core::entities::{backup_drills, backups};
use berth_core::store::backup_drills::{self as store, Filter, Finding};
use berth_core::store::page::{Page, Paged};
use berth_core::store::site_state;
use berth_runtime::Runtime;
use uuid::Uuid;

use crate::{Error, Ops, Result};

/// How long a drill may run before its record and scratch objects count as a dead drill's
/// leftovers. A drill restores one site's data, well within this.
pub const DRILL_TTL: Duration = Duration::from_secs(2 * 3600);
/// How long the scratch container must keep running to count as started.
const SETTLE: Duration = Duration::from_secs(2);

impl Ops {
    /// Queues a drill of `site_id` (or of a random sample of sites) and answers its job's id;
    /// `None` when the same drill is already queued or running. Administrators only.
    pub async fn request_drill(&self, caller: &Caller, site_id: Option<Uuid>) -> Result<Option<Uuid>> {
        caller.require_admin()?;
        self.runtime()?;
        self.backups()?;
        Ok(store::request(&self.db, caller, site_id).await?)
    }

    /// Drills newest first: all for administrators, a customer user's own sites' otherwise.
    pub async fn list_drills(
        &self,
        caller: &Caller,
        filter: Filter,
        page: Page,
    ) -> Result<Paged<backup_drills::Model>> {
        Ok(store::list(&self.db, caller, filter, page).await?)
    }

    /// Drills `backup` (a succeeded, verified backup) as drill `drill_id`: restores it into a
    /// scratch volume, compares what the volume holds with the snapshot's manifest and with the
    /// digest the backup recorded, and starts the site's container definition on it. Never
    /// fails: what went wrong is the finding's `error`. The scratch objects are removed
    /// whatever happened.
    pub async fn drill(&self, drill_id: Uuid, backup: &backups::Model) -> Finding {
        let result = self.drill_inner(drill_id, backup).await;
        self.remove_scratch(drill_id).await;
        match result {
            Ok(finding) => finding,
            Err(e) => Finding { error: Some(e.to_string()), ..Finding::default() },
        }
    }

    async fn drill_inner(&self, drill_id: Uuid, backup: &backups::Model) -> Result<Finding> {
        let rt = self.runtime()?.clone();
        let backups = self.backups()?.clone();
        if !rt.local_engine {
            return Err(Error::RemoteEngine);
        }
        let snapshot = backup
            .snapshot_id
            .clone()
            .ok_or_else(|| Error::Restore(format!("backup {} has no snapshot", backup.id)))?;
        let name = rt.names.drill(drill_id);
        let expires = chrono::Utc::now().timestamp() + DRILL_TTL.as_secs() as i64;
        let labels = rt.names.drill_labels(drill_id, backup.customer_id, expires);

        // 1. The snapshot restored (every blob read back and checked first) into staging.
        let staging = staging_dir(&backups, drill_id);
        let expected = async {
            reset_dir(&staging).await?;
            backups
                .repository(backup.customer_id)
                .restore(&snapshot, &staging)
                .await
                .map_err(|e| Error::Restore(format!("the backup did not restore: {e}")))
        }
        .await;
        let expected = match expected {
            Ok(m) => m,
            Err(e) => {
                let _ = tokio::fs::remove_dir_all(&staging).await;
                return Err(e);
            }
        };

        // 2. A scratch volume filled from it; staging goes as soon as the copy is made.
        rt.engine.ensure_volume(&name, labels.clone()).await?;
        let mountpoint = rt
            .engine
            .volume_mountpoint(&name)
            .await?
            .map(PathBuf::from)
            .ok_or_else(|| Error::Fill(format!("the scratch volume {name} vanished")))?;
        let (src, dst) = (staging.clone(), mountpoint.clone());
        let filled = tokio::task::spawn_blocking(move || berth_runtime::volumes::fill_dir(&src, &dst)).await;
        let _ = tokio::fs::remove_dir_all(&staging).await;
        filled.map_err(|e| Error::Fill(format!("the copy stopped: {e}")))?.map_err(|e| Error::Fill(e.to_string()))?;

        // 3. What the scratch volume holds, read back from the volume itself.
        let dir = mountpoint.clone();
        let restored = tokio::task::spawn_blocking(move || Manifest::of_dir(&dir))
            .await
            .map_err(|e| Error::Fill(e.to_string()))?
            .map_err(|e| Error::Fill(format!("cannot read the scratch volume: {e}")))?;
        let mismatches = differences(&expected, &restored);
        let mut finding = Finding {
            files: Some(restored.file_count()),
            bytes: Some(restored.total_bytes()),
            mismatches: Some(mismatches.len() as u64),
            error: None,
        };
        if !mismatches.is_empty() {
            let shown: Vec<&str> = mismatches.iter().take(5).map(String::as_str).collect();
            finding.error = Some(format!(
                "{} path(s) restored differ from the snapshot's manifest: {}{}",
                mismatches.len(),
                shown.join(", "),
                if mismatches.len() > shown.len() { ", …" } else { "" }
            ));
            return Ok(finding);
        }
        let digest = restored.digest();
        if let Some(recorded) = &backup.manifest_sha256 {
            if *recorded != digest {
                finding.error = Some(format!(
                    "the restored files' manifest (SHA-256 {digest}) is not the one backup {} recorded ({recorded})",
                    backup.id
                ));
                return Ok(finding);
            }
        }
        if let Some(count) = backup.file_count {
            if u64::try_from(count).ok() != finding.files {
                finding.error =
                    Some(format!("the backup recorded {count} files, the restore holds {}", restored.file_count()));
                return Ok(finding);
            }
        }

        // 4. The site's own container definition starts on the copy, on no network.
        if let Err(e) = self.start_scratch(&rt, backup, &name, labels).await {
            finding.error = Some(e.to_string());
        }
        Ok(finding)
    }

    /// Creates and starts the scratch container, and checks it is still running a moment later.
    async fn start_scratch(
        &self,
        rt: &Runtime,
        backup: &backups::Model,
        name: &str,
        labels: std::collections::HashMap<String, String>,
    ) -> Result<()> {
        let desired = site_state::desired_one(&self.db, &self.keys, backup.site_id).await?;
        let spec = berth_runtime::converge::spec_of(&desired)
            .map_err(|e| Error::Restore(format!("the site's container cannot be described: {e}")))?;
        let image = rt.engine.image(&spec.image).await?.ok_or_else(|| {
            Error::Restore(format!(
                "the site's image {} is not on this host; the scratch container cannot start",
                spec.image
            ))
        })?;
        let body = berth_runtime::spec::scratch(&rt.names, &spec, &image, name, labels);
        rt.engine.create(name, body).await?;
        rt.engine.start(name).await?;
        tokio::time::sleep(SETTLE).await;
        let detail = rt.engine.inspect(name).await?;
        match detail {
            Some(d) if d.running => Ok(()),
            Some(d) => Err(Error::Restore(format!(
                "the site's container did not keep running on the restored data ({})",
                d.error.unwrap_or_else(|| format!("state {}", d.state))
            ))),
            None => Err(Error::Restore("the scratch container vanished".into())),
        }
    }

    /// Removes a drill's scratch container and volume (either may be missing); a failure is
    /// logged and left to the next sweep.
    async fn remove_scratch(&self, drill_id: Uuid) {
        let Ok(rt) = self.runtime() else { return };
        let name = rt.names.drill(drill_id);
        if let Err(e) = rt.engine.remove(&name).await {
            tracing::warn!(drill.id = %drill_id, error = %e, "Cannot remove a drill's scratch container yet");
        }
        if let Err(e) = rt.engine.remove_volume(&name).await {
            tracing::warn!(drill.id = %drill_id, error = %e, "Cannot remove a drill's scratch volume yet");
        }
        if let Ok(backups) = self.backups() {
            let _ = tokio::fs::remove_dir_all(staging_dir(backups, drill_id)).await;
        }
    }

    /// Cleans up after drills that died: records still `running` after [`DRILL_TTL`] are
    /// marked failed, and every scratch container and volume of a drill that is not running any
    /// more is removed. Returns how many scratch objects went.
    pub async fn sweep_drills(&self) -> Result<usize> {
        let rt = self.runtime()?;
        let stale =
            chrono::Utc::now() - chrono::Duration::from_std(DRILL_TTL).unwrap_or_else(|_| chrono::Duration::hours(2));
        let interrupted = store::interrupt_stale(&self.db, stale).await?;
        if interrupted > 0 {
            tracing::warn!(interrupted, "Drills whose worker stopped were marked failed");
        }
        let running = store::running(&self.db).await?;
        let mut removed = 0;
        for c in rt.engine.containers(&rt.names.drill_filter()).await? {
            if c.drill_id().is_some_and(|id| running.contains(&id)) {
                continue;
            }
            rt.engine.remove(&c.id).await?;
            removed += 1;
        }
        let prefix = format!("{}-drill-", rt.names.instance());
        for volume in rt.engine.volumes(&rt.names.drill_filter()).await? {
            let drill = volume.strip_prefix(&prefix).and_then(|id| id.parse::<Uuid>().ok());
            if drill.is_some_and(|id| running.contains(&id)) {
                continue;
            }
            match rt.engine.remove_volume(&volume).await {
                Ok(()) => removed += 1,
                Err(e) => tracing::warn!(volume, error = %e, "Cannot remove a dead drill's scratch volume yet"),
            }
        }
        if removed > 0 {
            tracing::info!(removed, "Removed the scratch objects of drills that did not finish");
        }
        Ok(removed)
    }
}

fn staging_dir(backups: &berth_backup::Backups, drill_id: Uuid) -> PathBuf {
    backups.dir().join(".staging").join(format!("drill-{drill_id}"))
}

async fn reset_dir(dir: &Path) -> Result<()> {
    if tokio::fs::try_exists(dir).await.unwrap_or(false) {
        tokio::fs::remove_dir_all(dir).await.map_err(|e| Error::Fill(e.to_string()))?;
    }
    tokio::fs::create_dir_all(dir).await.map_err(|e| Error::Fill(e.to_string()))
}

/// The paths whose entry differs between the two manifests (missing, extra, or another kind,
/// size, checksum or link target), sorted.
pub fn differences(expected: &Manifest, found: &Manifest) -> Vec<String> {
    use std::collections::BTreeMap;
    let want: BTreeMap<&str, &EntryKind> = expected.entries.iter().map(|e| (e.path.as_str(), &e.kind)).collect();
    let got: BTreeMap<&str, &EntryKind> = found.entries.iter().map(|e| (e.path.as_str(), &e.kind)).collect();
    let mut out: Vec<String> = want
        .iter()
        .filter(|(path, kind)| got.get(*path) != Some(*kind))
        .map(|(path, _)| (*path).to_owned())
        .chain(got.keys().filter(|path| !want.contains_key(*path)).map(|p| (*p).to_owned()))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use berth_backup::{Entry, EntryKind, Manifest};

    use super::differences;

    fn file(path: &str, sha: &str) -> Entry {
        Entry { path: path.into(), kind: EntryKind::File { size: 1, sha256: sha.into() } }
    }

    #[test]
    fn differences_name_missing_extra_and_changed_paths() {
        let a = Manifest::new(vec![file("a", "1"), file("b", "2"), Entry { path: "d".into(), kind: EntryKind::Dir }]);
        assert!(differences(&a, &a.clone()).is_empty());
        let b = Manifest::new(vec![file("a", "1"), file("b", "3"), file("c", "4")]);
        assert_eq!(differences(&a, &b), ["b", "c", "d"]);
    }
}
