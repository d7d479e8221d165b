//! Berth's domain: configuration, entities, validation, crypto and the tenant-scoped
//! data-access layer shared by the server, the web UI and the workers.

pub mod access;
pub mod alerting;
pub mod auth;
pub mod backup_retention;
pub mod cache;
pub mod config;
pub mod crypto;
pub mod db;
pub mod entities;
pub mod error;
pub mod flows;
pub mod hash_pool;
pub mod jobs;
pub mod net;
pub mod platform_backup;
pub mod schedule;
pub mod store;
pub mod totp;
pub mod types;
pub mod validate;
pub mod webhook;

pub use error::{Error, FieldError, Result};
