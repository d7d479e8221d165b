//! Operations on sites that touch both the database (desired state, audit) and the container
//! engine: the one layer behind the REST API, the admin console and the portal, so the three
//! cannot diverge. Each operation checks the caller's scope through the store first, so another
//! tenant's site is not found before anything reaches Docker.
//!
//! Errors are one type, [`Error`]; the server maps it once to problem+json and the web crate
//! once to a page message.

pub mod backups;
pub mod drill;
pub mod error;
pub mod restore;
pub mod sites;
pub mod volumes;

use std::sync::Arc;

use berth_core::crypto::Keys;
use berth_runtime::Runtime;
use sea_orm::DatabaseConnection;

pub use error::{Error, Result};

/// What the operations reach: the database, the keys that open site secrets, the container
/// runtime (`None` when `BERTH_DOCKER_HOST` is off) and the backup repositories.
#[derive(Clone)]
pub struct Ops {
    pub db: DatabaseConnection,
    pub keys: Arc<Keys>,
    pub runtime: Option<Arc<Runtime>>,
    /// The customers' backup repositories; `None` until [`Ops::with_backups`] (backup
    /// operations then answer [`Error::NoBackups`]).
    pub backups: Option<Arc<berth_backup::Backups>>,
}

impl Ops {
    pub fn new(db: DatabaseConnection, keys: Arc<Keys>, runtime: Option<Arc<Runtime>>) -> Self {
        Self { db, keys, runtime, backups: None }
    }

    /// These operations with the backup repositories to read and write.
    pub fn with_backups(mut self, backups: Arc<berth_backup::Backups>) -> Self {
        self.backups = Some(backups);
        self
    }

    /// True when a container runtime runs sites here.
    pub fn has_runtime(&self) -> bool {
        self.runtime.is_some()
    }

    /// Asks the reconciler for a pass now, so a change converges at once rather than at its
    /// next tick; nothing to do without a runtime.
    pub fn reconcile_soon(&self) {
        if let Some(rt) = &self.runtime {
            rt.reconcile_soon();
        }
    }

    fn runtime(&self) -> Result<&Arc<Runtime>> {
        self.runtime.as_ref().ok_or(Error::NoRuntime)
    }
}
