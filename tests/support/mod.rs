//! The one test-app builder. Each [`TestApp`] gets its own PostgreSQL database, its own Redis
//! key prefix and its own data dir, runs the real application on an ephemeral loopback port,
//! and removes all of it when dropped.
//!
//! The services come from `scripts/test.sh`, which exports `BERTH_TEST_DATABASE_URL` (a
//! PostgreSQL superuser URL) and `BERTH_TEST_REDIS_URL`. Without them the tests fail with a
//! message saying so: they never skip.

#![allow(dead_code)]

pub mod services;

use std::net::SocketAddr;

use berth_core::config::Config;
use berth_server::startup::{self, Services};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::Value;
use tokio::sync::oneshot;
use uuid::Uuid;

pub const ADMIN_EMAIL: &str = "root@berth.test";
pub const ADMIN_PASSWORD: &str = "Correct-Horse-Battery-9";
/// Links Berth sends are built from this, never from a request's Host.
pub const PUBLIC_URL: &str = "http://panel.berth.test";

pub fn pg_admin_url() -> String {
    std::env::var("BERTH_TEST_DATABASE_URL")
        .expect("BERTH_TEST_DATABASE_URL is not set: run the suite with `bash scripts/test.sh`")
}

pub fn redis_url() -> String {
    std::env::var("BERTH_TEST_REDIS_URL")
        .expect("BERTH_TEST_REDIS_URL is not set: run the suite with `bash scripts/test.sh`")
}

/// The URL of another database on the test server.
pub fn pg_url_for(db_name: &str) -> String {
    let admin = pg_admin_url();
    let (base, _) = admin.rsplit_once('/').expect("database URL has a path");
    format!("{base}/{db_name}")
}

/// A fresh, empty PostgreSQL database; dropped with the returned guard.
pub struct TempDatabase {
    pub name: String,
    pub url: String,
}

impl TempDatabase {
    pub async fn create() -> Self {
        let name = format!("berth_test_{}", Uuid::new_v4().simple());
        let admin = Database::connect(pg_admin_url()).await.expect("connect to the test PostgreSQL");
        admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.expect("create test database");
        admin.close().await.ok();
        let url = pg_url_for(&name);
        Self { name, url }
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any runtime we can borrow: clean up on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                if let Ok(admin) = Database::connect(pg_admin_url()).await {
                    let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

pub mod runtime;

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub db: DatabaseConnection,
    pub config: Config,
    pub redis_prefix: String,
    /// The site operations of the running app (its database, keys and container runtime, whose
    /// reconciler is the app's), for tests of operations no route exposes.
    pub ops: berth_ops::Ops,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _data_dir: tempfile::TempDir,
    _database: TempDatabase,
    /// Set by [`TestApp::spawn_runtime`]: this test's Docker objects, removed on drop.
    pub docker: Option<runtime::DockerScope>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Starts the app with extra `BERTH_*` settings over the test defaults.
    pub async fn spawn_with(extra: &[(&str, &str)]) -> Self {
        Self::start(extra, false).await
    }

    /// Like [`spawn_with`](Self::spawn_with), with the job workers, the scheduler and the
    /// reconciler running in process as under `berth serve`.
    pub async fn spawn_with_workers(extra: &[(&str, &str)]) -> Self {
        Self::start(extra, true).await
    }

    /// Starts the app with extra settings; `workers` also runs the workers and the reconciler.
    pub async fn start(extra: &[(&str, &str)], workers: bool) -> Self {
        let database = TempDatabase::create().await;
        let data_dir = tempfile::tempdir().expect("temp data dir");
        let redis_prefix = format!("berth-test:{}:", Uuid::new_v4().simple());
        let secret = berth_core::crypto::random_token("");
        let mut vars: Vec<(String, String)> = vec![
            ("BERTH_DATABASE_URL".into(), database.url.clone()),
            ("BERTH_REDIS_URL".into(), redis_url()),
            ("BERTH_REDIS_PREFIX".into(), redis_prefix.clone()),
            ("BERTH_SECRET_KEY".into(), secret),
            ("BERTH_DATA_DIR".into(), data_dir.path().display().to_string()),
            ("BERTH_LISTEN".into(), "127.0.0.1:0".into()),
            ("BERTH_PUBLIC_URL".into(), PUBLIC_URL.into()),
            ("BERTH_BOOTSTRAP_ADMIN_EMAIL".into(), ADMIN_EMAIL.into()),
            ("BERTH_BOOTSTRAP_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
            // No container runtime unless a test asks for one (TestApp::spawn_runtime).
            ("BERTH_DOCKER_HOST".into(), "off".into()),
            ("BERTH_INGRESS_MODE".into(), "off".into()),
            // Scheduled backups only in the test of them (tests/backups/schedule.rs): a site
            // that lives across a full hour would otherwise be backed up mid-test.
            ("BERTH_BACKUP_SCHEDULES".into(), "false".into()),
        ];
        for (k, v) in extra {
            vars.retain(|(name, _)| name != k);
            vars.push((k.to_string(), v.to_string()));
        }
        let config = Config::load(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
            .unwrap_or_else(|p| panic!("test configuration is invalid: {p:?}"));
        let services = Services::connect(config.clone()).await.expect("connect services");
        services.migrate().await.expect("migrate");
        startup::bootstrap_admin(&services).await.expect("bootstrap admin");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let db = services.db.clone();
        let ops = berth_ops::Ops::new(services.db.clone(), services.keys.clone(), services.runtime.clone())
            .with_backups(services.worker_env.backups.clone());
        let server = tokio::spawn(async move {
            let stop = async move {
                let _ = rx.await;
            };
            if let Err(e) = startup::serve(&services, listener, workers, stop).await {
                panic!("test server failed: {e:#}");
            }
        });
        Self {
            addr,
            base: format!("http://{addr}"),
            db,
            config,
            redis_prefix,
            ops,
            stop: Some(tx),
            server: Some(server),
            _data_dir: data_dir,
            _database: database,
            docker: None,
        }
    }

    /// A client with its own cookie jar, not signed in.
    pub fn client(&self) -> Client {
        Client::new(&self.base)
    }

    /// A client signed in as the bootstrap admin.
    pub async fn admin(&self) -> Client {
        let mut c = self.client();
        c.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        c
    }

    /// Creates a customer (as admin) and returns its id.
    pub async fn customer(&self, admin: &Client, email: &str, plan: &str) -> String {
        let res = admin
            .post(
                "/api/v1/customers",
                &serde_json::json!({"email": email, "company_name": format!("{email} Ltd"), "plan": plan}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        res.str("id")
    }

    /// Creates a portal user for a customer with a password and returns a signed-in client.
    pub async fn customer_user(&self, admin: &Client, customer_id: &str, email: &str) -> Client {
        let res = admin
            .post(
                &format!("/api/v1/customers/{customer_id}/users"),
                &serde_json::json!({"email": email, "password": "Portal-Password-42"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        let mut c = self.client();
        c.login(email, "Portal-Password-42").await;
        c
    }

    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.server.take() {
            let _ = handle.await;
        }
    }

    /// Every Redis key this app wrote.
    pub async fn redis_keys(&self) -> Vec<String> {
        let client = redis::Client::open(redis_url()).expect("redis url");
        let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
        redis::cmd("KEYS").arg(format!("{}*", self.redis_prefix)).query_async(&mut conn).await.expect("KEYS")
    }
}

/// Jobs still queued or running in `db`, as `kind (state)`: a test must leave none behind.
impl TestApp {
    /// Waits (up to a minute) until the workers have finished every queued job, for tests whose
    /// requests enqueue work (a signup enqueues its onboarding). Fails the test otherwise.
    pub async fn wait_for_idle_queue(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let mut left = pending_jobs(&self.db).await;
            left.retain(|job| !PERIODIC_KINDS.iter().any(|k| job.starts_with(&format!("{k} "))));
            if left.is_empty() {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "jobs still pending after 60 s: {left:?}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// POSTs `body` to the signup webhook signed with `secret` now, as the website does.
    pub async fn signup_webhook(&self, secret: &str, body: &Value) -> Res {
        signed_signup(&self.base, secret, body).await
    }

    /// Removes queued jobs, for tests that run the work themselves (e.g. drive onboarding steps
    /// one by one) and must not race a worker.
    pub async fn discard_jobs(&self) {
        self.db
            .execute(sea_orm::Statement::from_string(
                self.db.get_database_backend(),
                "DELETE FROM jobs WHERE state IN ('queued', 'running')".to_owned(),
            ))
            .await
            .expect("discard jobs");
    }
}

/// A signed signup delivery to the app at `base` (usable from spawned tasks).
pub async fn signed_signup(base: &str, secret: &str, body: &Value) -> Res {
    let raw = body.to_string().into_bytes();
    let signature = berth_core::webhook::sign(secret, chrono::Utc::now().timestamp(), &raw);
    Client::finish(
        reqwest::Client::new()
            .post(format!("{base}/api/v1/webhooks/signup"))
            .header("content-type", "application/json")
            .header("Berth-Signature", signature)
            .body(raw),
    )
    .await
}

/// Job kinds the built-in schedules enqueue every few seconds while a runtime runs.
pub const PERIODIC_KINDS: [&str; 5] = [
    <berth_core::jobs::metrics::CollectMetrics as berth_core::jobs::Job>::NAME,
    <berth_core::jobs::metrics::MeasureDisk as berth_core::jobs::Job>::NAME,
    <berth_core::jobs::alerts::EvaluateAlerts as berth_core::jobs::Job>::NAME,
    <berth_core::jobs::metrics::CheckUptime as berth_core::jobs::Job>::NAME,
    <berth_core::jobs::metrics::RollupMetrics as berth_core::jobs::Job>::NAME,
];

pub async fn pending_jobs(db: &DatabaseConnection) -> Vec<String> {
    let rows = db
        .query_all(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT kind, state FROM jobs WHERE state IN ('queued', 'running')".to_owned(),
        ))
        .await
        .unwrap_or_default();
    rows.iter()
        .map(|r| {
            let kind: String = r.try_get("", "kind").unwrap_or_default();
            let state: String = r.try_get("", "state").unwrap_or_default();
            format!("{kind} ({state})")
        })
        .collect()
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // A test that leaves jobs in the queue fails here (unless it is failing already).
        if !std::thread::panicking() {
            let url = self.config.server.effective_database_url();
            let left = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async {
                    let Ok(db) = Database::connect(url).await else { return Vec::new() };
                    let mut left = pending_jobs(&db).await;
                    let _ = db.close().await;
                    // The platform's own periodic work (site metrics, every few seconds where a
                    // runtime runs) is always about to run: it is not a test's leftover.
                    left.retain(|job| !PERIODIC_KINDS.iter().any(|k| job.starts_with(&format!("{k} "))));
                    left
                })
            })
            .join()
            .unwrap_or_default();
            if !left.is_empty() {
                panic!("the test left jobs in the queue: {left:?}");
            }
        }
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.server.take() {
            handle.abort();
        }
        let prefix = self.redis_prefix.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let Ok(client) = redis::Client::open(redis_url()) else { return };
                let Ok(mut conn) = client.get_multiplexed_async_connection().await else { return };
                let keys: Vec<String> =
                    redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.unwrap_or_default();
                if !keys.is_empty() {
                    let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
                }
            });
        })
        .join();
    }
}

/// An HTTP response with its body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Res {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Res {
    pub fn str(&self, key: &str) -> String {
        self.body[key].as_str().unwrap_or_else(|| panic!("`{key}` missing in {}", self.body)).to_owned()
    }

    pub fn content_type(&self) -> &str {
        self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// Asserts an RFC 7807 answer with this status and problem slug.
    pub fn assert_problem(&self, status: StatusCode, slug: &str) {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(self.content_type(), "application/problem+json", "body: {}", self.text);
        assert_eq!(self.body["type"], format!("urn:berth:problem:{slug}"), "body: {}", self.text);
        assert_eq!(self.body["status"], status.as_u16());
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }

    /// The fields named in a 422's per-field errors.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["field"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }
}

/// A browser-like API client: a cookie jar, the CSRF token of its session, or a bearer token.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub csrf: Option<String>,
    pub bearer: Option<String>,
    pub extra_headers: Vec<(String, String)>,
}

impl Client {
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        Self { http, base: base.to_owned(), csrf: None, bearer: None, extra_headers: vec![] }
    }

    /// A client that authenticates with a bearer token only (no cookies).
    pub fn with_token(base: &str, token: &str) -> Self {
        let mut c = Self::new(base);
        c.bearer = Some(token.to_owned());
        c
    }

    pub async fn login(&mut self, email: &str, password: &str) -> Res {
        let res = self.post("/api/v1/auth/login", &serde_json::json!({"email": email, "password": password})).await;
        assert_eq!(res.status, StatusCode::OK, "login as {email} failed: {}", res.text);
        self.csrf = res.body["csrf_token"].as_str().map(str::to_owned);
        res
    }

    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Res {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(csrf) = &self.csrf {
            req = req.header("x-csrf-token", csrf);
        }
        if let Some(token) = &self.bearer {
            req = req.bearer_auth(token);
        }
        for (k, v) in &self.extra_headers {
            req = req.header(k, v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        Self::finish(req).await
    }

    pub async fn finish(req: reqwest::RequestBuilder) -> Res {
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Res { status, headers, body, text }
    }

    pub async fn get(&self, path: &str) -> Res {
        self.request(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Res {
        self.request(Method::POST, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: &Value) -> Res {
        self.request(Method::PATCH, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Res {
        self.request(Method::DELETE, path, None).await
    }

    /// A raw request with a body and content type of the test's choosing.
    pub async fn raw(&self, method: Method, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Res {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(csrf) = &self.csrf {
            req = req.header("x-csrf-token", csrf);
        }
        if let Some(token) = &self.bearer {
            req = req.bearer_auth(token);
        }
        Self::finish(req).await
    }
}

/// The current TOTP code for an otpauth:// URI, as an authenticator app would show it.
pub fn totp_code(uri: &str) -> String {
    totp_rs::TOTP::from_url_unchecked(uri).expect("valid otpauth URI").generate_current().expect("clock")
}

/// The code of the next 30-second step: Berth accepts one step of clock skew, and accepts each
/// step's code once, so a test that already used the current code signs in with this one
/// instead of waiting for the clock.
pub fn totp_next_code(uri: &str) -> String {
    let totp = totp_rs::TOTP::from_url_unchecked(uri).expect("valid otpauth URI");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    totp.generate(now + totp.step)
}
