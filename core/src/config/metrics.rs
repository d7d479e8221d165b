//! Monitoring: how often site metrics are collected, how long samples are kept, and who may
//! read `/metrics`. docs/monitoring.md describes the behaviour.

use super::{Mask, Raw, Secret, Setting};

/// This area's settings, in the order `config check` prints them.
pub const SETTINGS: &[Setting] = &[
    METRICS_INTERVAL_SECONDS,
    UPTIME_INTERVAL_SECONDS,
    METRICS_TOKEN,
    METRICS_RAW_HOURS,
    METRICS_MINUTE_DAYS,
    METRICS_HOUR_DAYS,
    ALERTS_INTERVAL_SECONDS,
    ALERTS_RESOLVE_HOLD_SECONDS,
    ALERTS_RESTART_AFTER_FAILED_CHECKS,
    ALERTS_GROUP_MIN_SITES,
    METRICS_DISK_INTERVAL_SECONDS,
];

const METRICS_INTERVAL_SECONDS: Setting = Setting {
    key: "metrics_interval_seconds",
    default: "15",
    mask: Mask::Plain,
    about: "how often every running site's CPU, memory, network, block I/O and PIDs are sampled (divides 60)",
    value: |c| Some(c.metrics.interval_seconds.to_string()),
};
const UPTIME_INTERVAL_SECONDS: Setting = Setting {
    key: "uptime_interval_seconds",
    default: "30",
    mask: Mask::Plain,
    about: "how often every routed site is requested through the ingress by its host name (divides 60)",
    value: |c| Some(c.metrics.uptime_interval_seconds.to_string()),
};
const METRICS_TOKEN: Setting = Setting {
    key: "metrics_token",
    default: "(none: /metrics answers loopback clients only)",
    mask: Mask::Secret,
    about: "bearer token Prometheus sends to read `/metrics` from anywhere",
    value: |c| c.metrics.token.as_ref().map(|s| s.expose().to_owned()),
};
const METRICS_RAW_HOURS: Setting = Setting {
    key: "metrics_raw_hours",
    default: "48",
    mask: Mask::Plain,
    about: "how long raw samples are kept",
    value: |c| Some(c.metrics.raw_hours.to_string()),
};
const METRICS_MINUTE_DAYS: Setting = Setting {
    key: "metrics_minute_days",
    default: "14",
    mask: Mask::Plain,
    about: "how long 1-minute rollups are kept",
    value: |c| Some(c.metrics.minute_days.to_string()),
};
const METRICS_HOUR_DAYS: Setting = Setting {
    key: "metrics_hour_days",
    default: "400",
    mask: Mask::Plain,
    about: "how long 1-hour rollups are kept (about 13 months)",
    value: |c| Some(c.metrics.hour_days.to_string()),
};

const ALERTS_INTERVAL_SECONDS: Setting = Setting {
    key: "alerts_interval_seconds",
    default: "15",
    mask: Mask::Plain,
    about: "how often the alert rules are evaluated against the latest samples and uptime checks (divides 60)",
    value: |c| Some(c.metrics.alerts_interval_seconds.to_string()),
};
const ALERTS_RESOLVE_HOLD_SECONDS: Setting = Setting {
    key: "alerts_resolve_hold_seconds",
    default: "60",
    mask: Mask::Plain,
    about: "how long a firing alert's condition must stay clear before it resolves (so flapping does not page)",
    value: |c| Some(c.metrics.alerts_resolve_hold_seconds.to_string()),
};
const ALERTS_RESTART_AFTER_FAILED_CHECKS: Setting = Setting {
    key: "alerts_restart_after_failed_checks",
    default: "0",
    mask: Mask::Plain,
    about: "restart a site after this many consecutive failed uptime checks while its down alert fires (0: never)",
    value: |c| Some(c.metrics.alerts_restart_after_failed_checks.to_string()),
};

const ALERTS_GROUP_MIN_SITES: Setting = Setting {
    key: "alerts_group_min_sites",
    default: "5",
    mask: Mask::Plain,
    about: "when at least this many sites fire (or resolve) in one evaluation round, each channel gets one notification listing them",
    value: |c| Some(c.metrics.alerts_group_min_sites.to_string()),
};
const METRICS_DISK_INTERVAL_SECONDS: Setting = Setting {
    key: "metrics_disk_interval_seconds",
    default: "300",
    mask: Mask::Plain,
    about: "how often the disk use of every running site's volume is measured (divides 60, or a multiple of 60 dividing 3600)",
    value: |c| Some(c.metrics.disk_interval_seconds.to_string()),
};

#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Seconds between collections; divides 60, so a cron schedule can fire it.
    pub interval_seconds: u32,
    /// Seconds between uptime checks; divides 60.
    pub uptime_interval_seconds: u32,
    /// The bearer token `/metrics` demands from non-loopback clients; `None`: loopback only.
    pub token: Option<Secret>,
    pub raw_hours: u32,
    pub minute_days: u32,
    pub hour_days: u32,
    /// Seconds between alert evaluations; divides 60.
    pub alerts_interval_seconds: u32,
    pub alerts_resolve_hold_seconds: u32,
    /// Remediation: consecutive failed uptime checks before a restart; 0 turns it off.
    pub alerts_restart_after_failed_checks: u32,
    /// At least this many sites firing (or resolving) in one round are notified as one group.
    pub alerts_group_min_sites: u32,
    /// Seconds between disk measurements of the site volumes; divides 60, or is a multiple of
    /// 60 that divides 3600.
    pub disk_interval_seconds: u32,
}

impl MetricsConfig {
    pub(super) fn load(raw: &mut Raw) -> Self {
        let mut divisor_of_60 = |setting: &Setting, fallback: u32| {
            let seconds = raw.number(setting, 1, 60) as u32;
            if 60 % seconds == 0 {
                seconds
            } else {
                raw.problem(setting, "must divide 60 (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60)");
                fallback
            }
        };
        let interval_seconds = divisor_of_60(&METRICS_INTERVAL_SECONDS, 15);
        let uptime_interval_seconds = divisor_of_60(&UPTIME_INTERVAL_SECONDS, 30);
        let alerts_interval_seconds = divisor_of_60(&ALERTS_INTERVAL_SECONDS, 15);
        let disk_interval_seconds = {
            let seconds = raw.number(&METRICS_DISK_INTERVAL_SECONDS, 1, 3600) as u32;
            if (seconds < 60 && 60 % seconds == 0) || (seconds.is_multiple_of(60) && 3600 % seconds == 0) {
                seconds
            } else {
                raw.problem(
                    &METRICS_DISK_INTERVAL_SECONDS,
                    "must divide 60, or be a multiple of 60 that divides 3600 (e.g. 300)",
                );
                300
            }
        };
        let token = raw.get(&METRICS_TOKEN);
        if token.as_ref().is_some_and(|t| t.len() < 16) {
            raw.problem(&METRICS_TOKEN, "must be at least 16 characters");
        }
        MetricsConfig {
            interval_seconds,
            uptime_interval_seconds,
            token: token.map(Secret),
            raw_hours: raw.number(&METRICS_RAW_HOURS, 1, 24 * 31) as u32,
            minute_days: raw.number(&METRICS_MINUTE_DAYS, 1, 366) as u32,
            hour_days: raw.number(&METRICS_HOUR_DAYS, 1, 3660) as u32,
            alerts_interval_seconds,
            alerts_resolve_hold_seconds: raw.number(&ALERTS_RESOLVE_HOLD_SECONDS, 0, 86_400) as u32,
            alerts_restart_after_failed_checks: raw.number(&ALERTS_RESTART_AFTER_FAILED_CHECKS, 0, 1000) as u32,
            alerts_group_min_sites: raw.number(&ALERTS_GROUP_MIN_SITES, 2, 100_000) as u32,
            disk_interval_seconds,
        }
    }
}
