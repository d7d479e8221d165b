//! Workers: the queues this process works, job leases, shutdown, retention, and the metrics
//! listener of `berth worker`. docs/queue.md describes the behaviour.

use std::net::SocketAddr;

use super::{Mask, Raw, Setting};

/// This area's settings, in the order `config check` prints them.
pub const SETTINGS: &[Setting] =
    &[WORKER_QUEUES, WORKER_LEASE_SECONDS, WORKER_SHUTDOWN_SECONDS, JOB_RETENTION_DAYS, WORKER_METRICS_LISTEN];

const WORKER_QUEUES: Setting = Setting {
    key: "worker_queues",
    default: "default=8,short=8,long=2",
    mask: Mask::Plain,
    about: "the queues this process works, each `name=concurrency`",
    value: |c| Some(c.workers.queues.iter().map(|(q, n)| format!("{q}={n}")).collect::<Vec<_>>().join(",")),
};
const WORKER_LEASE_SECONDS: Setting = Setting {
    key: "worker_lease_seconds",
    default: "30",
    mask: Mask::Plain,
    about: "a running job's lease, renewed every third of it",
    value: |c| Some(c.workers.lease_seconds.to_string()),
};
const WORKER_SHUTDOWN_SECONDS: Setting = Setting {
    key: "worker_shutdown_seconds",
    default: "30",
    mask: Mask::Plain,
    about: "time running jobs get to finish on shutdown",
    value: |c| Some(c.workers.shutdown_seconds.to_string()),
};
const JOB_RETENTION_DAYS: Setting = Setting {
    key: "job_retention_days",
    default: "7",
    mask: Mask::Plain,
    about: "how long finished jobs and succeeded flow runs are kept",
    value: |c| Some(c.workers.job_retention_days.to_string()),
};
const WORKER_METRICS_LISTEN: Setting = Setting {
    key: "worker_metrics_listen",
    default: "(off)",
    mask: Mask::Plain,
    about: "where `berth worker` serves `/metrics`",
    value: |c| c.workers.metrics_listen.map(|a| a.to_string()),
};

#[derive(Debug, Clone)]
pub struct WorkersConfig {
    /// (queue name, concurrency) pairs this process works.
    pub queues: Vec<(String, usize)>,
    pub lease_seconds: u64,
    pub shutdown_seconds: u64,
    pub job_retention_days: u32,
    /// Where `berth worker` serves `/metrics`; `None`: nowhere.
    pub metrics_listen: Option<SocketAddr>,
}

impl WorkersConfig {
    pub(super) fn load(raw: &mut Raw) -> Self {
        let queues = parse_queues(&raw.get_or_default(&WORKER_QUEUES)).unwrap_or_else(|e| {
            raw.problem(&WORKER_QUEUES, e);
            Vec::new()
        });
        let lease_seconds = raw.number(&WORKER_LEASE_SECONDS, 1, 3600);
        let shutdown_seconds = raw.number(&WORKER_SHUTDOWN_SECONDS, 0, 3600);
        let job_retention_days = raw.number(&JOB_RETENTION_DAYS, 1, 3650) as u32;
        let metrics_listen = raw.get(&WORKER_METRICS_LISTEN).and_then(|v| match v.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                raw.problem(&WORKER_METRICS_LISTEN, format_args!("`{v}` is not an address like 0.0.0.0:9187"));
                None
            }
        });
        WorkersConfig { queues, lease_seconds, shutdown_seconds, job_retention_days, metrics_listen }
    }
}

/// `name=concurrency` pairs separated by commas, e.g. `default=8,short=8,long=2`.
fn parse_queues(value: &str) -> Result<Vec<(String, usize)>, String> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, n) = part.split_once('=').ok_or_else(|| format!("`{part}` is not name=concurrency"))?;
        let name = name.trim();
        let valid = !name.is_empty()
            && name.len() <= 32
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid {
            return Err(format!("`{name}` is not a queue name (a-z, 0-9, _ and -, at most 32)"));
        }
        let n: usize = n
            .trim()
            .parse()
            .ok()
            .filter(|n| (1..=1024).contains(n))
            .ok_or_else(|| format!("concurrency of `{name}` must be a whole number from 1 to 1024"))?;
        if out.iter().any(|(q, _)| q == name) {
            return Err(format!("queue `{name}` is listed twice"));
        }
        out.push((name.to_owned(), n));
    }
    if out.is_empty() {
        return Err("name at least one queue".into());
    }
    Ok(out)
}
