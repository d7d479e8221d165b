//! The worker environment: everything jobs, flow steps and the reconciler reach, built once at
//! start-up and shared by all of them. A new edge (storage, notifiers) is a new field here, so
//! no job threads its own services through settings.

use std::sync::Arc;

use berth_core::config::Config;
use berth_core::crypto::Keys;
use berth_integrations::dns::{self, DnsProvider};
use berth_integrations::mail::{self, Mailer};
use berth_integrations::tls::{AcmeIssuer, CertStore, DirChallengeStore};
use berth_runtime::Runtime;
use sea_orm::DatabaseConnection;

pub struct Env {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub keys: Arc<Keys>,
    /// The container runtime and ingress; `None` when `BERTH_DOCKER_HOST` is off.
    pub runtime: Option<Arc<Runtime>>,
    pub dns: Arc<dyn DnsProvider>,
    pub mailer: Arc<dyn Mailer>,
    /// The ACME CA; `None`: sites get self-signed certificates.
    pub acme: Option<Arc<AcmeIssuer>>,
    pub challenges: Arc<DirChallengeStore>,
    pub certs: Arc<CertStore>,
    /// The process's one metrics registry (served on `/metrics`).
    pub metrics: prometheus::Registry,
    /// The site metrics collector's memory between cycles, and its Prometheus series.
    pub collector: crate::jobs::metrics::Collector,
    /// Each customer's backup repository (local directory or S3, per `BERTH_BACKUP_*`).
    pub backups: Arc<berth_backup::Backups>,
    /// The Redis cache the pages read through; jobs invalidate what they change (off without
    /// Redis; set by [`Env::with_cache`]).
    pub cache: berth_core::cache::Cache,
}

impl Env {
    /// Builds the outside services from the configuration; nothing is contacted yet.
    pub fn new(
        db: DatabaseConnection,
        config: Arc<Config>,
        keys: Arc<Keys>,
        runtime: Option<Arc<Runtime>>,
        metrics: prometheus::Registry,
    ) -> anyhow::Result<Self> {
        let mailer = mail::from_config(&config).map_err(|e| anyhow::anyhow!("mail is misconfigured: {e}"))?;
        let local_engine = config.runtime.docker_host.as_deref().is_some_and(|h| h.starts_with("unix://"));
        Ok(Self {
            backups: Arc::new(berth_backup::Backups::new(config.backup.clone(), keys.clone())),
            cache: berth_core::cache::Cache::off(),
            collector: crate::jobs::metrics::Collector::new(local_engine, &metrics),
            dns: Arc::from(dns::from_config(&config)),
            mailer: Arc::from(mailer),
            acme: AcmeIssuer::from_config(&config),
            challenges: Arc::new(DirChallengeStore::new(config.acme_challenge_dir())),
            certs: Arc::new(CertStore::new(config.tls_dir())),
            db,
            config,
            keys,
            runtime,
            metrics,
        })
    }

    /// The same environment with the process's Redis cache, so jobs can invalidate it.
    pub fn with_cache(mut self, cache: berth_core::cache::Cache) -> Self {
        self.cache = cache;
        self
    }

    /// An environment for jobs that reach nothing but the database (queue tests, the queue
    /// benchmark): the embedded default configuration, a fresh random key, no container
    /// runtime, a private metrics registry.
    pub fn minimal(db: DatabaseConnection) -> anyhow::Result<Self> {
        let config = Config::load(|_| None)
            .map_err(|problems| anyhow::anyhow!("the default configuration is invalid: {}", problems.join("; ")))?;
        let keys = Keys::derive(berth_core::crypto::random_token("").as_bytes());
        Self::new(db, Arc::new(config), Arc::new(keys), None, prometheus::Registry::new())
    }

    /// The site operations over this environment (database, keys, runtime, backups): what a
    /// flow step calls, the same calls the API and the console make.
    pub fn ops(&self) -> berth_ops::Ops {
        berth_ops::Ops::new(self.db.clone(), self.keys.clone(), self.runtime.clone()).with_backups(self.backups.clone())
    }

    /// The container runtime, or why a step that needs it cannot run.
    pub fn runtime(&self) -> anyhow::Result<&Arc<Runtime>> {
        self.runtime
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no container runtime is configured (BERTH_DOCKER_HOST is off)"))
    }

    /// True when the container engine is on this machine (`unix://`), so a volume's mountpoint
    /// can be read in place.
    pub fn engine_is_local(&self) -> bool {
        self.config.runtime.docker_host.as_deref().is_some_and(|h| h.starts_with("unix://"))
    }

    /// Asks the reconciler for a pass now rather than at its next tick (a new site, a stored
    /// certificate); nothing to do without a container runtime.
    pub fn reconcile_soon(&self) {
        if let Some(rt) = &self.runtime {
            rt.reconcile_soon();
        }
    }
}
