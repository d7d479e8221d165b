//! The job queue, scheduler and flows (workers/), driven against real PostgreSQL (and SQLite
//! where the embedded semantics are claimed). `api.rs` covers the HTTP API over them.

mod api;
mod cli;
mod flows;
mod paused;
mod scheduler;
mod semantics;
mod sqlite;

use std::future::Future;
use std::time::{Duration, Instant};

use berth_core::entities::jobs;
use berth_workers::queue::pool::{Pool, Settings};
use berth_workers::Registry;
use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::sync::watch;
use uuid::Uuid;

/// Polls `check` until it returns `Some`, failing after `within` with `what`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn job(db: &DatabaseConnection, id: Uuid) -> jobs::Model {
    jobs::Entity::find_by_id(id).one(db).await.expect("query job").expect("job exists")
}

/// A worker pool running in this process until its guard is stopped or dropped.
pub struct Worker {
    pub id: String,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Worker {
    pub fn start(db: &DatabaseConnection, registry: Registry, lease: Duration) -> Self {
        Self::start_with(db, registry, |s| s.lease = lease)
    }

    pub fn start_with(db: &DatabaseConnection, registry: Registry, tune: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = Settings { poll: Duration::from_millis(200), ..Settings::default() };
        tune(&mut settings);
        let id = settings.worker_id.clone();
        let (stop, rx) = watch::channel(false);
        let env = std::sync::Arc::new(berth_workers::Env::minimal(db.clone()).expect("worker environment"));
        let pool = Pool::new(env, registry, berth_workers::flow_registry(), settings);
        let task = tokio::spawn(pool.run(rx));
        Self { id, stop, task: Some(task) }
    }

    /// Graceful stop: returns when the pool has finished or released its jobs.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.await.expect("pool task");
        }
    }

    /// A crash: the pool and its jobs vanish mid-flight, leases are left to expire.
    pub fn crash(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A named gate a test job waits on until the test opens it; one name per test, so tests that
/// run in parallel never release each other's jobs.
pub struct Gate {
    open: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

static GATES: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<Gate>>>> =
    std::sync::LazyLock::new(Default::default);

pub fn gate(name: &str) -> std::sync::Arc<Gate> {
    let mut gates = GATES.lock().unwrap_or_else(|e| e.into_inner());
    gates
        .entry(name.to_owned())
        .or_insert_with(|| std::sync::Arc::new(Gate { open: false.into(), notify: tokio::sync::Notify::new() }))
        .clone()
}

impl Gate {
    pub fn open(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.open.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

/// Waits at the gate named in its payload.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Blocking {
    pub gate: String,
}

impl berth_core::jobs::Job for Blocking {
    const NAME: &'static str = "test.blocking";
}

#[async_trait::async_trait]
impl berth_workers::RunJob for Blocking {
    async fn run(&self, _ctx: &berth_workers::JobContext) -> anyhow::Result<()> {
        gate(&self.gate).wait().await;
        Ok(())
    }
}

/// `berth worker` as a separate OS process on the app's database, its stderr (JSON logs)
/// collected so a test can wait for a line.
pub struct ChildWorker {
    pub child: tokio::process::Child,
    pub lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl ChildWorker {
    pub fn spawn(app: &crate::support::TestApp, lease_seconds: u64) -> Self {
        Self::spawn_with(app, lease_seconds, &[])
    }

    /// Like [`spawn`](Self::spawn), with extra `BERTH_*` settings.
    pub fn spawn_with(app: &crate::support::TestApp, lease_seconds: u64, extra: &[(&str, &str)]) -> Self {
        use tokio::io::AsyncBufReadExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let url = app.config.server.database_url.as_ref().expect("tests use PostgreSQL").expose().to_owned();
        let key = app.config.server.secret_key.as_ref().expect("tests set a key").expose().to_owned();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.arg("worker")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BERTH_DATABASE_URL", url)
            .env("BERTH_SECRET_KEY", key)
            .env("BERTH_DATA_DIR", dir.path())
            .env("BERTH_WORKER_LEASE_SECONDS", lease_seconds.to_string())
            .env("BERTH_WORKER_QUEUES", "default=2")
            // A queue test: no containers or nginx of its own on the shared engine.
            .env("BERTH_DOCKER_HOST", "off")
            .env("BERTH_INGRESS_MODE", "off")
            .env("BERTH_LOG_FORMAT", "json")
            .envs(extra.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn berth worker");
        let stderr = child.stderr.take().expect("stderr");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        Self { child, lines, _dir: dir }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("child is running")
    }

    /// The `host:pid:` prefix of this process's worker id in `jobs.locked_by`.
    pub fn owns(&self, locked_by: Option<&str>) -> bool {
        locked_by.is_some_and(|l| l.contains(&format!(":{}:", self.pid())))
    }

    pub fn logged(&self, needle: &str) -> bool {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|l| l.contains(needle))
    }

    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }
}
