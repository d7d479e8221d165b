//! Berth's edge to the container engine and the reverse proxy.
//!
//! - [`engine`]: the container engine trait, [`docker`] its bollard implementation;
//! - [`spec`]: a site container's specification and the one hardening function;
//! - [`names`]: names and labels of Berth's Docker objects;
//! - [`images`]: site images Berth builds itself (`berth images build`);
//! - [`ingress`]: nginx, rendered with askama, checked, swapped and reloaded;
//! - [`stats`]: containers' CPU, memory, network, block I/O and PIDs, for the metrics collector;
//! - [`converge`]: one site brought to its desired state (the reconciler in berth-workers
//!   loops over every site with it);
//! - [`volumes`]: filling a fresh data volume from a directory (a restore's data).

pub mod converge;
pub mod disk;
pub mod docker;
pub mod engine;
pub mod error;
pub mod images;
pub mod ingress;
pub mod metrics;
pub mod names;
pub mod spec;
pub mod stats;
pub mod subnets;
pub mod volumes;

use std::sync::Arc;
use std::time::Duration;

use berth_core::config::Config;
use tokio::sync::Notify;

pub use error::{Result, RuntimeError};

/// Everything the API and the reconciler share about the runtime.
pub struct Runtime {
    pub engine: Arc<dyn engine::Engine>,
    /// The Docker client itself, for image builds (not part of the engine trait).
    pub docker: docker::DockerEngine,
    pub names: names::Names,
    pub ingress: ingress::Ingress,
    pub metrics: metrics::RuntimeMetrics,
    /// What [`Runtime::reconcile_soon`] signals; only the reconciler waits on it.
    pub wake: Notify,
    pub interval: Duration,
    pub health_timeout: Duration,
    /// Sites whose container could not be made wait before the next attempt.
    pub backoff: converge::Backoffs,
    /// The engine runs on this machine (a `unix://` socket), so a volume's mountpoint is a
    /// directory Berth can write: how a fresh volume is filled (see [`volumes`]).
    pub local_engine: bool,
    /// How long a data volume a site no longer uses is kept (`BERTH_RETIRED_VOLUME_KEEP_DAYS`).
    pub retired_volume_keep: Duration,
    /// What earlier passes learned by inspecting containers, reused while nothing changed.
    pub inspections: converge::Inspections,
}

impl Runtime {
    /// The runtime the configuration asks for, its metrics in `metrics` (the process's one
    /// registry); `None` when `BERTH_DOCKER_HOST` is off.
    pub fn from_config(config: &Config, metrics: &prometheus::Registry) -> Result<Option<Arc<Self>>> {
        let rt = &config.runtime;
        let Some(host) = &rt.docker_host else { return Ok(None) };
        let docker = docker::DockerEngine::connect(host)?
            .with_subnets(subnets::SubnetPool { pool: rt.site_subnets, prefix: rt.site_subnet_prefix })
            .with_stop_timeout(Duration::from_secs(rt.site_stop_timeout_seconds));
        Ok(Some(Arc::new(Self {
            engine: Arc::new(docker.clone()),
            docker,
            names: names::Names::new(&rt.docker_prefix),
            ingress: ingress::Ingress::new(config),
            metrics: metrics::RuntimeMetrics::new(metrics),
            wake: Notify::new(),
            interval: Duration::from_secs(rt.reconcile_interval_seconds),
            health_timeout: Duration::from_secs(rt.site_health_timeout_seconds),
            backoff: converge::Backoffs::default(),
            local_engine: host.starts_with("unix://"),
            retired_volume_keep: Duration::from_secs(rt.retired_volume_keep_days * 86_400),
            inspections: converge::Inspections::default(),
        })))
    }

    /// Asks for a reconcile pass soon rather than at the next tick (bursts are debounced into
    /// one pass). Each pass re-renders the ingress, so this is also how code that stored a new
    /// certificate gets it served without waiting for the interval.
    pub fn reconcile_soon(&self) {
        self.wake.notify_one();
    }

    /// The container name of a site.
    pub fn container_name(&self, site: uuid::Uuid) -> String {
        self.names.container(site)
    }
}
