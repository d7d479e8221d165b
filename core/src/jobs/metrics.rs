//! Monitoring jobs, enqueued by the built-in schedules: collection every
//! `BERTH_METRICS_INTERVAL_SECONDS`, rollups and retention every minute.

use serde::{Deserialize, Serialize};

use super::Job;

/// Samples every running site's container once, writes the samples in one statement and
/// updates the per-site Prometheus series.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectMetrics {}

impl Job for CollectMetrics {
    const NAME: &'static str = "metrics.collect";
    const QUEUE: &'static str = "short";
    /// A missed cycle is not retried: the next one is seconds away.
    const MAX_ATTEMPTS: i32 = 1;

    fn dedup_key(&self) -> Option<String> {
        Some(Self::NAME.into())
    }
}

/// Rolls raw samples up into 1-minute and 1-hour buckets, prepares tomorrow's partition and
/// drops what is older than the retention settings.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollupMetrics {}

impl Job for RollupMetrics {
    const NAME: &'static str = "metrics.rollup";
    const QUEUE: &'static str = "long";

    fn dedup_key(&self) -> Option<String> {
        Some(Self::NAME.into())
    }
}

/// Requests every routed site through the ingress by its host name, as a visitor would, and
/// records the status and latency (one statement per round).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckUptime {}

impl Job for CheckUptime {
    const NAME: &'static str = "metrics.uptime";
    const QUEUE: &'static str = "short";
    /// A missed round is not retried: the next one is seconds away.
    const MAX_ATTEMPTS: i32 = 1;

    fn dedup_key(&self) -> Option<String> {
        Some(Self::NAME.into())
    }
}

/// Measures how much of its plan's `storage_mb` every running site's volume uses (every
/// `BERTH_METRICS_DISK_INTERVAL_SECONDS`, never on the collection's hot path) and writes the
/// round in one statement.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureDisk {}

impl Job for MeasureDisk {
    const NAME: &'static str = "metrics.disk";
    const QUEUE: &'static str = "long";
    /// A missed round is not retried: the next one comes.
    const MAX_ATTEMPTS: i32 = 1;

    fn dedup_key(&self) -> Option<String> {
        Some(Self::NAME.into())
    }
}
