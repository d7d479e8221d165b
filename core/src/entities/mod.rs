//! sea-orm entities: one module per table, plain data only. Behaviour on them lives in
//! `crate::store`, and the API never serialises these types directly.

pub mod alert_rules;
pub mod alert_silences;
pub mod alerts;
pub mod api_tokens;
pub mod audit_log;
pub mod backup_checks;
pub mod backup_drills;
pub mod backups;
pub mod customers;
pub mod flow_runs;
pub mod flow_steps;
pub mod incident_events;
pub mod incidents;
pub mod job_schedules;
pub mod jobs;
pub mod notification_channels;
pub mod password_tokens;
pub mod plans;
pub mod site_domains;
pub mod site_volumes;
pub mod sites;
pub mod users;
pub mod webhook_events;
