//! Berth's background work: the durable job queue ([`queue`]), cron schedules ([`scheduler`]),
//! flows ([`flows`]) and the reconciler ([`reconciler`]), all sharing one worker environment
//! ([`Env`]). Jobs and flows are *defined* in `berth_core::{jobs, flows}`; this crate *runs*
//! them: [`jobs`] and [`flows`] hold the runners, one file per family, under the same names.
//! `berth worker` runs this apart from the HTTP server; `berth serve` runs it in process by
//! default. docs/queue.md describes the guarantees.

pub mod env;
pub mod flows;
pub mod jobs;
pub mod queue;
pub mod reconciler;
pub mod scheduler;

use std::sync::Arc;

use berth_core::jobs::alerts::{EvaluateAlerts, NotifyAlert, NotifyAlertGroup, RemediateSite, TestNotification};
use berth_core::jobs::backup::{BackupSite, CheckBackups, DrillBackups, PruneBackups, ScheduleBackups};
use berth_core::jobs::housekeeping::{PurgePasswordLinks, RemoveRetiredVolumes, Retention};
use berth_core::jobs::metrics::{CheckUptime, CollectMetrics, MeasureDisk, RollupMetrics};
use berth_core::jobs::platform_backup::BackupPlatform;
use tokio::sync::watch;

pub use env::Env;
pub use queue::{JobContext, Registry, RunJob};

/// Every job kind this build of Berth runs.
pub fn registry() -> Registry {
    let registry = Registry::new()
        .register::<berth_core::jobs::flow::DriveFlow>()
        .register::<PurgePasswordLinks>()
        .register::<Retention>()
        .register::<RemoveRetiredVolumes>()
        .register::<CollectMetrics>()
        .register::<CheckUptime>()
        .register::<RollupMetrics>()
        .register::<MeasureDisk>()
        .register::<EvaluateAlerts>()
        .register::<NotifyAlert>()
        .register::<NotifyAlertGroup>()
        .register::<RemediateSite>()
        .register::<TestNotification>()
        .register::<BackupPlatform>()
        .register::<BackupSite>()
        .register::<ScheduleBackups>()
        .register::<PruneBackups>()
        .register::<CheckBackups>()
        .register::<DrillBackups>();
    #[cfg(feature = "testing")]
    let registry = {
        use berth_core::jobs::demo;
        registry
            .register::<demo::Noop>()
            .register::<demo::Sleep>()
            .register::<demo::Fail>()
            .register::<demo::StartDemoFlow>()
    };
    registry
}

/// Every flow this build of Berth drives.
pub fn flow_registry() -> flows::FlowRegistry {
    let registry = flows::FlowRegistry::new()
        .register(berth_core::flows::onboarding::Onboarding)
        .register(berth_core::flows::restore::Restore);
    #[cfg(feature = "testing")]
    let registry = registry.register(berth_core::flows::demo::DemoFlow);
    registry
}

/// The schedules built into Berth. Site metrics are collected (and alerts evaluated) only where a container runtime
/// runs sites.
pub fn builtin_schedules(config: &berth_core::config::Config, with_runtime: bool) -> Vec<scheduler::Builtin> {
    let days = config.workers.job_retention_days;
    let mut schedules = vec![
        scheduler::Builtin::new("housekeeping.password_links", "0 */10 * * * *", &PurgePasswordLinks {}),
        scheduler::Builtin::new("housekeeping.retention", "0 17 3 * * *", &Retention { days }),
        // Berth's own database, daily at 02:45 UTC (docs/backups.md).
        scheduler::Builtin::new("backup.platform", "0 45 2 * * *", &BackupPlatform {}),
    ];
    if with_runtime {
        // Every N seconds (N divides 60, checked when the configuration is read).
        let every = format!("*/{} * * * * *", config.metrics.interval_seconds);
        schedules.push(scheduler::Builtin::new("metrics.collect", every, &CollectMetrics {}));
        let every = format!("*/{} * * * * *", config.metrics.uptime_interval_seconds);
        schedules.push(scheduler::Builtin::new("metrics.uptime", every, &CheckUptime {}));
        schedules.push(scheduler::Builtin::new("metrics.rollup", "5 * * * * *", &RollupMetrics {}));
        let disk = config.metrics.disk_interval_seconds;
        // Every N seconds (N divides 60) or every M minutes (M divides 60), checked when the
        // configuration is read.
        let every = match disk {
            ..60 => format!("*/{disk} * * * * *"),
            3600 => "30 0 * * * *".to_owned(),
            _ => format!("30 */{} * * * *", disk / 60),
        };
        schedules.push(scheduler::Builtin::new("metrics.disk", every, &MeasureDisk {}));
        let every = format!("*/{} * * * * *", config.metrics.alerts_interval_seconds);
        schedules.push(scheduler::Builtin::new("alerts.evaluate", every, &EvaluateAlerts {}));
        if config.backup.schedules {
            schedules.push(scheduler::Builtin::new("backup.schedule", "20 * * * * *", &ScheduleBackups {}));
            // Daily, after the verified backups of the night (03:30 UTC by default): retention
            // at 04:10, then the integrity check of every repository at 04:40 (docs/backups.md).
            schedules.push(scheduler::Builtin::new("backup.prune", "0 10 4 * * *", &PruneBackups {}));
            schedules.push(scheduler::Builtin::new("backup.check", "0 40 4 * * *", &CheckBackups::default()));
            // Weekly by default: restores a sample of sites' newest backups into scratch
            // containers (docs/backups.md, "Integrity and drills").
            schedules.push(scheduler::Builtin::new(
                "backup.drill",
                config.backup.drill_cron.clone(),
                &DrillBackups::default(),
            ));
        }
        schedules.push(scheduler::Builtin::new(
            "housekeeping.retired_volumes",
            "0 41 * * * *",
            &RemoveRetiredVolumes {},
        ));
    }
    schedules
}

/// How the worker pool of this process runs, from the configuration.
pub fn pool_settings(config: &berth_core::config::Config) -> queue::pool::Settings {
    queue::pool::Settings {
        queues: config.workers.queues.clone(),
        lease: std::time::Duration::from_secs(config.workers.lease_seconds),
        shutdown_grace: std::time::Duration::from_secs(config.workers.shutdown_seconds),
        ..queue::pool::Settings::default()
    }
}

/// Runs the worker pool, the scheduler and (with a container runtime) the reconciler until
/// `shutdown` turns true, then stops them gracefully (see [`queue::pool`]).
pub async fn run(env: Arc<Env>, shutdown: watch::Receiver<bool>) {
    let registry = registry();
    let scheduler = scheduler::Scheduler::new(
        env.db.clone(),
        Arc::new(registry.clone()),
        builtin_schedules(&env.config, env.runtime.is_some()),
    );
    let pool = queue::pool::Pool::new(env.clone(), registry, flow_registry(), pool_settings(&env.config));
    let scheduler = tokio::spawn(scheduler.run(shutdown.clone()));
    let reconciler = env.runtime.is_some().then(|| tokio::spawn(reconciler::run(env.clone(), shutdown.clone())));
    pool.run(shutdown).await;
    let _ = scheduler.await;
    if let Some(handle) = reconciler {
        let _ = handle.await;
    }
}
