//! Berth's schema, one numbered migration per change. Every migration runs on PostgreSQL and
//! SQLite, and follows expand-then-contract: it never breaks the binary already running.

pub use sea_orm_migration::prelude::MigratorTrait;
use sea_orm_migration::prelude::*;

mod columns;
mod m0001_initial;
mod m0002_runtime;
mod m0003_jobs;
mod m0005_webhook_events;
mod m0006_site_metrics;
mod m0007_totp_last_step;
mod m0008_alerts;
mod m0009_site_user_and_running_image;
mod m0010_backups;
mod m0011_backup_schedules;
mod m0012_alert_silences;
mod m0013_monitoring_rules;
mod m0014_site_volumes;
mod m0015_backup_operations;
mod m0016_backup_drills;
mod m0017_metrics_covering_indexes;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_initial::Migration),
            Box::new(m0002_runtime::Migration),
            Box::new(m0003_jobs::Migration),
            Box::new(m0005_webhook_events::Migration),
            Box::new(m0006_site_metrics::Migration),
            Box::new(m0007_totp_last_step::Migration),
            Box::new(m0008_alerts::Migration),
            Box::new(m0009_site_user_and_running_image::Migration),
            Box::new(m0010_backups::Migration),
            Box::new(m0011_backup_schedules::Migration),
            Box::new(m0012_alert_silences::Migration),
            Box::new(m0013_monitoring_rules::Migration),
            Box::new(m0014_site_volumes::Migration),
            Box::new(m0015_backup_operations::Migration),
            Box::new(m0016_backup_drills::Migration),
            Box::new(m0017_metrics_covering_indexes::Migration),
        ]
    }
}

/// Every migration's name, oldest first: what `seaql_migrations.version` holds once it ran.
pub fn names() -> Vec<String> {
    Migrator::migrations().iter().map(|m| m.name().to_owned()).collect()
}
