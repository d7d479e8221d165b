//! Berth's edge to the container engine and the reverse proxy.
//!
//! - [`engine`]: the container engine trait, [`docker`] its bollard implementation;
//! - [`spec`]: a site container's specification and the one hardening function;
//! - [`names`]: names and labels of Berth's Docker objects;
//! - [`images`]: site images Berth builds itself (`berth images build`);
//! - [`ingress`]: nginx, rendered with askama, checked, swapped and reloaded;
//! - [`converge`]: one site brought to its desired state (the reconciler in berth-workers
//!   loops over every site with it).

pub mod converge;
pub mod docker;
pub mod engine;
pub mod error;
pub mod images;
pub mod ingress;
pub mod metrics;
pub mod names;
pub mod spec;
pub mod subnets;

use std::sync::Arc;
use std::time::Duration;

use berth_core::config::Config;
use tokio::sync::Notify;

pub use error::{Result, RuntimeError};

/// Default of [`Settings::stop_timeout`].
pub const DEFAULT_STOP_TIMEOUT_SECONDS: u64 = 10;
/// Default of [`Settings::drain_timeout`].
pub const DEFAULT_DRAIN_SECONDS: u64 = 10;
/// Default of [`Settings::ingress_stop_on_exit`].
pub const DEFAULT_INGRESS_STOP_ON_EXIT: bool = false;

/// The runtime's settings that `berth_core::config::Config` does not carry yet (they join it,
/// as `BERTH_SITE_STOP_TIMEOUT_SECONDS`, `BERTH_SITE_DRAIN_SECONDS` and
/// `BERTH_INGRESS_STOP_ON_EXIT`, once it is split into modules); until then their defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How long a site's process gets to exit after its stop signal (on stop, restart, and for
    /// the old container after an update) before Docker kills it.
    pub stop_timeout: Duration,
    /// After an update switched nginx to the new container, how long requests still in flight
    /// to the old one may take before it is stopped. Berth's own nginx usually finishes far
    /// sooner, and Berth stops waiting then; with the system nginx (external mode) Berth cannot
    /// tell, so it waits this long.
    pub drain_timeout: Duration,
    /// Whether a clean shutdown of Berth also stops its nginx (managed mode). Off by default:
    /// the sites stay online while Berth is stopped or upgraded; `berth ingress stop` is the
    /// operator's way to take them down.
    pub ingress_stop_on_exit: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            stop_timeout: Duration::from_secs(DEFAULT_STOP_TIMEOUT_SECONDS),
            drain_timeout: Duration::from_secs(DEFAULT_DRAIN_SECONDS),
            ingress_stop_on_exit: DEFAULT_INGRESS_STOP_ON_EXIT,
        }
    }
}

/// Everything the API and the reconciler share about the runtime.
pub struct Runtime {
    pub engine: Arc<dyn engine::Engine>,
    /// The Docker client itself, for image builds (not part of the engine trait).
    pub docker: docker::DockerEngine,
    pub names: names::Names,
    pub ingress: ingress::Ingress,
    pub metrics: metrics::RuntimeMetrics,
    /// Wakes the reconciler now rather than at its next tick (after an API change).
    pub nudge: Notify,
    pub interval: Duration,
    pub health_timeout: Duration,
}

impl Runtime {
    /// The runtime the configuration asks for; `None` when `BERTH_DOCKER_HOST` is off.
    pub fn from_config(config: &Config) -> Result<Option<Arc<Self>>> {
        Self::with_settings(config, &Settings::default())
    }

    /// Like [`from_config`](Self::from_config), with the settings `Config` does not carry yet.
    pub fn with_settings(config: &Config, settings: &Settings) -> Result<Option<Arc<Self>>> {
        let Some(host) = &config.docker_host else { return Ok(None) };
        let docker = docker::DockerEngine::connect(host)?
            .with_subnets(subnets::SubnetPool { pool: config.site_subnets, prefix: config.site_subnet_prefix })
            .with_stop_timeout(settings.stop_timeout);
        Ok(Some(Arc::new(Self {
            engine: Arc::new(docker.clone()),
            docker,
            names: names::Names::new(&config.docker_prefix),
            ingress: ingress::Ingress::with_settings(config, settings),
            metrics: metrics::RuntimeMetrics::new(),
            nudge: Notify::new(),
            interval: Duration::from_secs(config.reconcile_interval_seconds),
            health_timeout: Duration::from_secs(config.site_health_timeout_seconds),
        })))
    }

    /// Asks for a reconcile pass soon rather than at the next tick (bursts are debounced into
    /// one pass). Each pass re-renders the ingress, so this is also how code that stored a new
    /// certificate gets it served without waiting for the interval.
    pub fn reconcile_soon(&self) {
        self.nudge.notify_one();
    }

    /// The container name of a site.
    pub fn container_name(&self, site: uuid::Uuid) -> String {
        self.names.container(site)
    }
}
