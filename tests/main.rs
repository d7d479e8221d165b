//! Berth's end-to-end tests: one binary, driving the real application over HTTP against real
//! PostgreSQL and Redis (started by scripts/test.sh). `api/` mirrors `server/src/api/`; `ui/` drives the
//! admin console and the portal in a real browser.

mod api;
mod backups;
mod cli;
mod http;
mod integrations;
mod migrations;
mod monitoring;
mod platform_backup;
mod queue;
mod runtime;
mod support;
mod ui;
mod workers;
