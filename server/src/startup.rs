//! Start-up: connect to what the configuration names, migrate, make the first admin, serve.
//! Every failure here is one line a person can act on.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use berth_core::access::Caller;
use berth_core::cache::Cache;
use berth_core::config::{mask_url, Config};
use berth_core::crypto::{self, Keys};
use berth_core::store;
use berth_migrations::{Migrator, MigratorTrait};
use berth_ops::Ops;
use berth_runtime::Runtime;
use redis::aio::ConnectionManager;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::http::metrics::Metrics;
use crate::state::AppState;
use berth_core::auth::rate_limit::RateLimiter;
use berth_core::auth::session_store::{RedisStore, Store};

/// Connections to everything Berth depends on, made once at start-up.
pub struct Services {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub redis: Option<ConnectionManager>,
    /// The Redis cache of monitoring reads (off without Redis), shared by API, console and jobs.
    pub cache: Cache,
    pub keys: Arc<Keys>,
    /// The container runtime and ingress; `None` when BERTH_DOCKER_HOST is off.
    pub runtime: Option<Arc<Runtime>>,
    /// The process's one metrics registry: HTTP, queue, reconciler and ingress metrics.
    pub metrics: prometheus::Registry,
    /// What every job, flow step and the reconciler reach.
    pub worker_env: Arc<berth_workers::Env>,
}

/// Makes ring the process's TLS crypto provider (idempotent). Two providers are compiled in
/// (ring, used by the rest of Berth, and aws-lc-rs, which the backup engine's S3 client brings),
/// and rustls then refuses to choose one for a client built without naming it.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Services {
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        install_tls_provider();
        let db = berth_core::db::connect(&config).await?;
        let redis = match &config.server.redis_url {
            Some(url) => Some(connect_redis(url.expose()).await?),
            None => None,
        };
        let keys = Arc::new(load_keys(&config)?);
        let metrics = prometheus::Registry::new();
        let runtime =
            Runtime::from_config(&config, &metrics).map_err(|e| anyhow!("cannot set up the container runtime: {e}"))?;
        let cache = match &redis {
            Some(conn) => Cache::redis(conn.clone(), &config.server.redis_prefix),
            None => Cache::off(),
        };
        let config = Arc::new(config);
        let worker_env = Arc::new(
            berth_workers::Env::new(db.clone(), config.clone(), keys.clone(), runtime.clone(), metrics.clone())?
                .with_cache(cache.clone()),
        );
        Ok(Self { config, db, redis, cache, keys, runtime, metrics, worker_env })
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        Migrator::up(&self.db, None).await.map_err(|e| anyhow!("database migration failed: {e}"))
    }

    pub fn state(&self) -> AppState {
        let limiter = match &self.redis {
            Some(conn) => RateLimiter::redis(conn.clone(), &self.config.server.redis_prefix),
            None => RateLimiter::memory(),
        };
        AppState {
            db: self.db.clone(),
            config: self.config.clone(),
            keys: self.keys.clone(),
            redis: self.redis.clone(),
            cache: self.cache.clone(),
            limiter: Arc::new(limiter),
            metrics: Metrics::new(&self.metrics),
            ops: Ops::new(self.db.clone(), self.keys.clone(), self.runtime.clone())
                .with_backups(self.worker_env.backups.clone()),
        }
    }

    pub fn session_store(&self) -> Store {
        match &self.redis {
            Some(conn) => Store::Redis(RedisStore::new(conn.clone(), &self.config.server.redis_prefix)),
            None => Store::memory(),
        }
    }

    pub fn app(&self) -> axum::Router {
        crate::app::build(self.state(), self.session_store())
    }
}

pub async fn connect_redis(url: &str) -> anyhow::Result<ConnectionManager> {
    let fail = |e: &dyn std::fmt::Display| anyhow!("cannot connect to Redis {}: {e}", mask_url(url));
    let client = redis::Client::open(url).map_err(|e| fail(&e))?;
    let mut conn = tokio::time::timeout(Duration::from_secs(5), ConnectionManager::new(client))
        .await
        .map_err(|_| fail(&"timed out after 5 s"))?
        .map_err(|e| fail(&e))?;
    let _: String = redis::cmd("PING").query_async(&mut conn).await.map_err(|e| fail(&e))?;
    Ok(conn)
}

/// The secret key already in force (configured, or the embedded default's file), never a new
/// one: platform backups are signed with, and restored under, the key they were made with.
pub fn existing_keys(config: &Config) -> anyhow::Result<Keys> {
    if let Some(key) = &config.server.secret_key {
        return Ok(Keys::derive(key.expose().as_bytes()));
    }
    let path = config.server.data_dir.join("secret.key");
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 32 => Ok(Keys::derive(text.trim().as_bytes())),
        Ok(_) => Err(anyhow!("secret key in {} is shorter than 32 characters", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(anyhow!(
            "no secret key: BERTH_SECRET_KEY is unset and {} does not exist (put back the key this installation ran with)",
            path.display()
        )),
        Err(e) => Err(anyhow!("cannot read secret key {}: {e}", path.display())),
    }
}

/// The configured secret key, or on the embedded default one generated once into the data dir.
fn load_keys(config: &Config) -> anyhow::Result<Keys> {
    if let Some(key) = &config.server.secret_key {
        return Ok(Keys::derive(key.expose().as_bytes()));
    }
    let path = config.server.data_dir.join("secret.key");
    let key = match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = crypto::random_token("");
            write_private(&path, &key).with_context(|| format!("cannot write secret key to {}", path.display()))?;
            tracing::info!(path = %path.display(), "Generated a new secret key");
            key
        }
        Err(e) => return Err(anyhow!("cannot read secret key {}: {e}", path.display())),
    };
    if key.len() < 32 {
        return Err(anyhow!("secret key in {} is shorter than 32 characters", path.display()));
    }
    Ok(Keys::derive(key.as_bytes()))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// On an empty database, creates the first admin. Returns the password when Berth generated
/// it (so the caller prints it once); `None` when admins exist or the password was configured.
pub async fn bootstrap_admin(services: &Services) -> anyhow::Result<Option<(String, String)>> {
    if store::users::count_admins(&services.db).await? > 0 {
        return Ok(None);
    }
    let cfg = &services.config;
    let (password, generated) = match &cfg.server.bootstrap_admin_password {
        Some(p) => (p.expose().to_owned(), false),
        None => (crypto::random_password(), true),
    };
    let caller = Caller::system("bootstrap");
    let user = store::users::create_admin(&services.db, &caller, &cfg.server.bootstrap_admin_email, &password)
        .await
        .map_err(|e| anyhow!("cannot create the first admin: {e}"))?;
    tracing::info!(user.email = %user.email, "Created the first admin");
    Ok(generated.then_some((user.email, password)))
}

/// Makes glibc give large freed blocks back to the system at once. Its default raises the
/// `mmap` threshold to the largest block freed so far, after which each password hash's 19 MiB
/// comes from a heap where small allocations of other requests settle into the freed space and
/// pin it: a burst of sign-ins grew the process by about 19 MiB per request, for good, even with
/// hashing bounded to two at a time (`berth_core::hash_pool`). A fixed threshold of 128 KiB
/// (glibc's initial one) maps every block from there up on its own and unmaps it when freed; the
/// cost is a page fault per page of such blocks, small next to an argon2 hash. Called first in
/// `main`, before any thread starts.
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets an allocator parameter; it takes the allocator's own lock
        // and is called here before any other thread exists.
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
        if ok != 1 {
            eprintln!("warning: could not set the allocator's mmap threshold; memory may grow under bursts");
        }
    }
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("Shutting down");
}

/// Serves HTTP on `listener` (and runs the workers when `with_workers`) until `stop` resolves.
pub async fn serve(
    services: &Services,
    listener: TcpListener,
    with_workers: bool,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (tx, rx) = watch::channel(false);
    let state = services.state();
    // The workers, the scheduler and the reconciler, all on the one worker environment.
    let workers = with_workers.then(|| tokio::spawn(berth_workers::run(services.worker_env.clone(), rx)));
    let app = crate::app::build(state, services.session_store());
    let addr = listener.local_addr()?;
    tracing::info!(%addr, public_url = %services.config.server.public_url, "Berth is listening");
    crate::http::serve::serve(listener, app, services.config.server.http, stop).await.context("HTTP server failed")?;
    let _ = tx.send(true);
    if let Some(handle) = workers {
        let _ = handle.await;
    }
    Ok(())
}

/// `berth worker`: the workers, the scheduler and the reconciler without the HTTP API, until
/// `stop` resolves; with `BERTH_WORKER_METRICS_LISTEN`, also `/metrics` there (the process's
/// one registry: queue, reconciler and ingress metrics).
pub async fn run_worker(
    services: &Services,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let metrics = match services.config.workers.metrics_listen {
        None => None,
        Some(addr) => {
            let listener =
                TcpListener::bind(addr).await.map_err(|e| anyhow!("cannot listen for metrics on {addr}: {e}"))?;
            tracing::info!(addr = %listener.local_addr()?, "Worker metrics on /metrics");
            let token = services.config.metrics.token.as_ref().map(|t| t.expose().to_owned());
            let app = crate::http::metrics::router(services.metrics.clone(), token);
            // The same limits as the API's listener: a silent client cannot hold this port either.
            let limits = services.config.server.http;
            Some(tokio::spawn(
                async move { crate::http::serve::serve(listener, app, limits, std::future::pending()).await },
            ))
        }
    };
    let (tx, rx) = watch::channel(false);
    let workers = tokio::spawn(berth_workers::run(services.worker_env.clone(), rx));
    stop.await;
    let _ = tx.send(true);
    let _ = workers.await;
    if let Some(server) = metrics {
        server.abort();
    }
    Ok(())
}
