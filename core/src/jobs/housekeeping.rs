//! Built-in maintenance jobs, enqueued by the built-in schedules.

use serde::{Deserialize, Serialize};

use super::Job;

/// Deletes set-password links that expired, or were used, more than a day ago.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgePasswordLinks {}

impl Job for PurgePasswordLinks {
    const NAME: &'static str = "housekeeping.password_links";
    const QUEUE: &'static str = "short";

    fn dedup_key(&self) -> Option<String> {
        Some(Self::NAME.into())
    }
}

/// Deletes finished jobs and succeeded flow runs older than `days`. Dead jobs and failed runs
/// stay until a person retries them or deletes them: they are the record of what went wrong.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    pub days: u32,
}

impl Job for Retention {
    const NAME: &'static str = "housekeeping.retention";
    const QUEUE: &'static str = "long";

    fn dedup_key(&self) -> Option<String> {
        Some(Self::NAME.into())
    }
}

/// Removes the data volumes sites no longer use (replaced by a restore) whose
/// `BERTH_RETIRED_VOLUME_KEEP_DAYS` passed (`berth_ops::volumes`).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveRetiredVolumes {}

impl Job for RemoveRetiredVolumes {
    const NAME: &'static str = "housekeeping.retired_volumes";
    const QUEUE: &'static str = "long";

    fn dedup_key(&self) -> Option<String> {
        Some(Self::NAME.into())
    }
}
