//! Berth's background work: the durable job queue ([`queue`]), cron schedules
//! ([`scheduler`]) and flows ([`flows`]). `berth worker` runs this apart from the HTTP server;
//! `berth serve` runs it in process by default. docs/queue.md describes the guarantees.

pub mod demo;
pub mod flows;
pub mod housekeeping;
pub mod onboarding;
pub mod queue;
pub mod reconciler;
pub mod scheduler;

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::sync::watch;

pub use queue::{enqueue, enqueue_with, Job, JobContext, Options, Registry};

/// Every job kind this build of Berth runs.
pub fn registry() -> Registry {
    Registry::new()
        .register::<flows::driver::RunFlow>()
        .register::<housekeeping::PurgePasswordLinks>()
        .register::<housekeeping::Retention>()
        .register::<demo::Noop>()
        .register::<demo::Sleep>()
        .register::<demo::Fail>()
        .register::<demo::StartDemoFlow>()
}

/// Every flow this build of Berth drives. Onboarding needs the outside services (`edges`).
pub fn flow_registry(edges: Option<onboarding::Edges>) -> flows::FlowRegistry {
    let registry = flows::FlowRegistry::new().register(flows::demo::DemoFlow);
    match edges {
        Some(edges) => registry.register(onboarding::flow::OnboardingFlow { edges }),
        None => registry,
    }
}

/// The schedules built into Berth.
pub fn builtin_schedules(retention_days: u32) -> Vec<scheduler::Builtin> {
    vec![
        scheduler::Builtin {
            name: "housekeeping.password_links",
            cron: "0 */10 * * * *",
            kind: housekeeping::PurgePasswordLinks::NAME,
            payload: serde_json::json!({}),
        },
        scheduler::Builtin {
            name: "housekeeping.retention",
            cron: "0 17 3 * * *",
            kind: housekeeping::Retention::NAME,
            payload: serde_json::json!({ "days": retention_days }),
        },
    ]
}

/// How the workers of this process run.
#[derive(Clone)]
pub struct WorkerSettings {
    pub pool: queue::pool::Settings,
    /// Days finished jobs and succeeded flow runs are kept.
    pub retention_days: u32,
    /// Where the queue's metrics go (the server's registry under `berth serve`).
    pub metrics: Option<prometheus::Registry>,
    /// The outside services onboarding uses; without them onboarding runs are not driven here.
    pub onboarding: Option<onboarding::Edges>,
}

impl WorkerSettings {
    pub fn from_config(config: &berth_core::config::Config) -> Self {
        Self {
            pool: queue::pool::Settings {
                queues: config.workers.queues.clone(),
                lease: std::time::Duration::from_secs(config.workers.lease_seconds),
                shutdown_grace: std::time::Duration::from_secs(config.workers.shutdown_seconds),
                ..queue::pool::Settings::default()
            },
            retention_days: config.workers.job_retention_days,
            metrics: None,
            onboarding: None,
        }
    }
}

/// Runs the worker pool and the scheduler until `shutdown` turns true, then stops them
/// gracefully (see [`queue::pool`]).
pub async fn run(db: DatabaseConnection, settings: WorkerSettings, shutdown: watch::Receiver<bool>) {
    let registry = registry();
    let metrics = match &settings.metrics {
        Some(r) => queue::metrics::Metrics::new(r),
        None => queue::metrics::Metrics::unregistered(),
    };
    let scheduler =
        scheduler::Scheduler::new(db.clone(), Arc::new(registry.clone()), builtin_schedules(settings.retention_days));
    let pool =
        queue::pool::Pool::new(db, registry, flow_registry(settings.onboarding), settings.pool).with_metrics(metrics);
    let scheduler = tokio::spawn(scheduler.run(shutdown.clone()));
    pool.run(shutdown).await;
    let _ = scheduler.await;
}
