//! Backup jobs: one run of a site backup (`backup.site`). The row in `backups` is created with
//! the job, on the same transaction (`store::backups::request`); the job reads the site's data
//! volume while the site keeps serving, writes a snapshot into the customer's repository, reads
//! it back, and only then marks the row `succeeded`.

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
