//! Backup jobs: one run of a site backup (`backup.site`), the schedule that queues them
//! (`backup.schedule`), retention (`backup.prune`) and the integrity check (`backup.check`).
//! The row in `backups` is created with the `backup.site` job, on the same transaction
//! (`store::backups::request`); the job reads the site's data volume while the site keeps
//! serving, writes a snapshot into the customer's repository, reads it back, and only then marks
//! the row `succeeded`. Restore drills (`backup.drill`) restore a sample of sites' newest
//! backups into scratch containers.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Job;

/// Backs up one site's data volume into its customer's repository, for the `backups` row
/// `backup_id` (which names the site and the kind).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSite {
    pub backup_id: Uuid,
}

impl Job for BackupSite {
    const NAME: &'static str = "backup.site";
    const QUEUE: &'static str = "long";
    /// A retry re-reads the volume; a snapshot a killed attempt already wrote is found by its tag
    /// and verified instead of being written again.
    const MAX_ATTEMPTS: i32 = 3;

    fn dedup_key(&self) -> Option<String> {
        Some(format!("{}:{}", Self::NAME, self.backup_id))
    }
}

/// Every minute: queues the scheduled backups that are due, one `backup.site` job per site whose
/// effective `backup_cron` or `backup_verify_cron` ticked since its last scheduled backup
/// (`store::backups::due`).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBackups {}

impl Job for ScheduleBackups {
    const NAME: &'static str = "backup.schedule";
    const QUEUE: &'static str = "short";
    /// A missed round is made up by the next one: a tick is due until a backup after it exists.
    const MAX_ATTEMPTS: i32 = 1;

    fn dedup_key(&self) -> Option<String> {
        Some(Self::NAME.into())
    }
}

/// Daily: applies each site's GFS retention to its backups (`backup_retention::prune_site` over
/// the rows), forgets the snapshots of the backups it drops, prunes each customer's repository
/// and marks those rows `pruned`. Never the newest good backup of a site, never a backup still
/// queued or running (docs/backups.md, "Retention").
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneBackups {}

impl Job for PruneBackups {
    const NAME: &'static str = "backup.prune";
    const QUEUE: &'static str = "long";
    /// Idempotent: snapshots already forgotten are not looked for again, rows are marked after.
    const MAX_ATTEMPTS: i32 = 3;

    fn dedup_key(&self) -> Option<String> {
        Some(Self::NAME.into())
    }
}

/// Daily: checks every customer's repository (structure, and part `n` of 7 of the pack data
/// with `n` = day of the year % 7 + 1, so all data is read back over a week), and records each
/// outcome in `backup_checks`; a failed check raises the `backup_check` alert.
/// `{"full": true}` reads all data now; `customer_id` checks one customer's repository only.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckBackups {
    #[serde(default)]
    pub full: bool,
    #[serde(default)]
    pub customer_id: Option<Uuid>,
}

impl Job for CheckBackups {
    const NAME: &'static str = "backup.check";
    const QUEUE: &'static str = "long";
    /// A failed check is recorded, not retried: reading the same damage again tells nothing new.
    const MAX_ATTEMPTS: i32 = 1;

    fn dedup_key(&self) -> Option<String> {
        Some(match self.customer_id {
            Some(c) => format!("{}:{c}", Self::NAME),
            None => Self::NAME.into(),
        })
    }
}

/// A restore drill (docs/backups.md, "Integrity and drills"): for a random sample of
/// `BERTH_BACKUP_DRILL_SITES` sites with a succeeded, verified backup (or for `site_id` alone),
/// restores the newest such backup into a scratch volume, starts a scratch container on it, and
/// compares every file with the backup's manifest; each site's result is a `backup_drills` row.
/// Weekly by `BERTH_BACKUP_DRILL_CRON`, or asked for (`POST /api/v1/backup-drills`).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillBackups {
    /// Drill this site only; `None`: a random sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_id: Option<Uuid>,
}

impl Job for DrillBackups {
    const NAME: &'static str = "backup.drill";
    const QUEUE: &'static str = "long";
    /// A drill is a check, not a change: a failed one is recorded and the next one runs on its
    /// schedule, rather than repeating a drill that found a damaged backup.
    const MAX_ATTEMPTS: i32 = 1;

    /// One sampled drill at a time, and one drill of any one site at a time.
    fn dedup_key(&self) -> Option<String> {
        Some(match self.site_id {
            None => Self::NAME.to_owned(),
            Some(site) => format!("{}:{site}", Self::NAME),
        })
    }
}
