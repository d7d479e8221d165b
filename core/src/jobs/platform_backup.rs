//! The platform backup: Berth's own database, daily (see [`crate::platform_backup`]).

use serde::{Deserialize, Serialize};

use super::Job;

/// Backs up Berth's database into `BERTH_BACKUP_DIR/platform`, then deletes the platform
/// backups there that GFS retention (Berth's defaults) no longer keeps.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupPlatform {}

impl Job for BackupPlatform {
    const NAME: &'static str = "backup.platform";
    const QUEUE: &'static str = "long";
    const MAX_ATTEMPTS: i32 = 3;

    fn dedup_key(&self) -> Option<String> {
        Some(Self::NAME.into())
    }
}
