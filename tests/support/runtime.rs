//! The test-app builder's runtime part: a real Docker engine and a real nginx per test.
//!
//! Each runtime test gets its own Docker prefix (`bt<random>`: container, network and volume
//! names and the `berth.instance` label), so parallel tests and leftovers of earlier runs never
//! collide, and its own nginx on a free loopback port. [`TestApp::finish`] deletes the test's
//! sites through the API and fails the test if any container or network is left; dropping the
//! app force-removes whatever carries the test's label, volumes included, and stops the test's
//! nginx, which (like Berth's in production) outlives the app that started it.
//!
//! [`Traffic`] sends continuous requests through an ingress and reports every failed or slow
//! answer; [`TestImage`] makes a site image of the test's own from berth/site-static.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use berth_runtime::docker::DockerEngine;
use berth_runtime::engine::Engine;
use berth_runtime::names::Names;
use bollard::models::ContainerInspectResponse;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::{Client, TestApp};

const DOCKER_HOST: &str = "unix:///var/run/docker.sock";

pub fn engine() -> DockerEngine {
    DockerEngine::connect(DOCKER_HOST).expect("Docker engine client")
}

/// Builds berth/site-static once per test run, with the same code as `berth images build`.
pub async fn ensure_site_image() {
    static BUILT: OnceCell<()> = OnceCell::const_new();
    BUILT
        .get_or_init(|| async {
            berth_runtime::images::build_site_static(&engine(), std::path::Path::new("/bin/busybox"))
                .await
                .expect("build berth/site-static (needs Docker and busybox-static: run scripts/test.sh)");
        })
        .await;
}

/// An image made for one test from berth/site-static, under a name of its own; removed when
/// dropped.
pub struct TestImage {
    pub reference: String,
}

impl TestImage {
    /// berth/site-static under another name: the same image, but another reference for a site.
    pub async fn retag(scope: &DockerScope, tag: &str) -> Self {
        let repo = format!("berth-test/{}", scope.names.instance());
        let options = bollard::query_parameters::TagImageOptions { repo: Some(repo.clone()), tag: Some(tag.into()) };
        engine().client().tag_image(berth_runtime::images::SITE_STATIC_TAG, Some(options)).await.expect("tag image");
        Self { reference: format!("{repo}:{tag}") }
    }

    /// berth/site-static with `config` laid over its own (entry point, health check, ...),
    /// committed from a container that never runs.
    pub async fn derived(scope: &DockerScope, tag: &str, config: bollard::models::ContainerConfig) -> Self {
        use bollard::query_parameters::{CommitContainerOptionsBuilder, RemoveContainerOptions};
        let repo = format!("berth-test/{}", scope.names.instance());
        let docker = engine();
        // Unlabelled: the reconciler would remove a labelled container no site owns.
        let base = format!("{}-image-base", scope.names.instance());
        let body = bollard::models::ContainerCreateBody {
            image: Some(berth_runtime::images::SITE_STATIC_TAG.into()),
            ..Default::default()
        };
        docker.create(&base, body).await.expect("create the base container");
        let options = CommitContainerOptionsBuilder::new().container(&base).repo(&repo).tag(tag).pause(false).build();
        let committed = docker.client().commit_container(options, config).await;
        let remove = RemoveContainerOptions { force: true, ..Default::default() };
        let removed = docker.client().remove_container(&base, Some(remove)).await;
        committed.expect("commit image");
        let image = Self { reference: format!("{repo}:{tag}") };
        removed.expect("remove the base container");
        image
    }
}

impl Drop for TestImage {
    fn drop(&mut self) {
        let reference = self.reference.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let options = bollard::query_parameters::RemoveImageOptions { force: true, ..Default::default() };
                let _ = engine().client().remove_image(&reference, Some(options), None).await;
            });
        })
        .join();
    }
}

/// A test's Docker objects (everything labelled with its prefix) and its nginx (whatever runs
/// from its ingress directory).
pub struct DockerScope {
    pub names: Names,
    pub ingress: std::net::SocketAddr,
    _ingress_dir: tempfile::TempDir,
}

impl DockerScope {
    /// A fresh prefix (`bt<random>`), ingress directory and free loopback port.
    pub fn new() -> Self {
        let prefix = format!("bt{}", &Uuid::new_v4().simple().to_string()[..10]);
        let ingress_dir = tempfile::tempdir().expect("ingress dir");
        // nginx's workers run as an unprivileged user when the tests run as root.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(ingress_dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let ingress = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        Self { names: Names::new(&prefix), ingress, _ingress_dir: ingress_dir }
    }

    pub fn filter(&self) -> Vec<String> {
        self.names.label_filter()
    }

    pub fn ingress_dir(&self) -> &std::path::Path {
        self._ingress_dir.path()
    }

    /// The pid of the nginx master serving this scope, from its pid file, if that process lives.
    pub fn nginx_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.ingress_dir().join("nginx.pid")).ok()?;
        let pid: u32 = text.trim().parse().ok()?;
        alive(pid).then_some(pid)
    }
}

impl Default for DockerScope {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the command name, which is in parentheses.
        Ok(stat) => stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

/// Sends a signal with kill(1) (the tests have no libc binding of their own).
pub fn signal(pid: u32, name: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Stops an nginx master (graceful quit, then kill) and waits until it is gone: nginx outlives
/// Berth by design, so a test must stop the one it made.
fn stop_nginx(pid: u32) {
    signal(pid, "QUIT");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive(pid) {
        signal(pid, "KILL");
    }
}

impl Drop for DockerScope {
    fn drop(&mut self) {
        if let Some(pid) = self.nginx_pid() {
            stop_nginx(pid);
        }
        let filter = self.filter();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let e = engine();
                for c in e.containers(&filter).await.unwrap_or_default() {
                    let _ = e.remove(&c.id).await;
                }
                for n in e.networks(&filter).await.unwrap_or_default() {
                    let _ = e.remove_network(&n).await;
                }
                for v in e.volumes(&filter).await.unwrap_or_default() {
                    let _ = e.remove_volume(&v).await;
                }
            });
        })
        .join();
    }
}

/// A port for a test's nginx, which binds it only later, when Berth starts its ingress. It is
/// taken below the kernel's ephemeral range (32768–60999 by default): every test app binds its
/// own HTTP server to port 0 meanwhile, and a port picked by binding port 0 and letting go was
/// once handed to another test's app before this test's nginx bound it — the test then talked
/// to that app through "its" ingress. Ports are handed out once per run and checked free.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // A per-process starting point, so two suites on one machine rarely walk the same ports.
    let start = std::process::id().wrapping_mul(7_919) % SPAN;
    for _ in 0..SPAN {
        let port = FIRST + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN;
        let port = u16::try_from(port).expect("below 32000");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {FIRST} and {}", FIRST + SPAN)
}

impl TestApp {
    /// The app with the container runtime, the reconciler (every second) and a managed nginx.
    pub async fn spawn_runtime() -> Self {
        Self::spawn_runtime_with(&[]).await
    }

    pub async fn spawn_runtime_with(extra: &[(&str, &str)]) -> Self {
        ensure_site_image().await;
        let scope = DockerScope::new();
        let prefix = scope.names.instance().to_owned();
        let dir = scope.ingress_dir().display().to_string();
        let listen = scope.ingress.to_string();
        let mut vars: Vec<(&str, &str)> = vec![
            ("BERTH_DOCKER_HOST", DOCKER_HOST),
            ("BERTH_DOCKER_PREFIX", &prefix),
            ("BERTH_INGRESS_MODE", "managed"),
            ("BERTH_INGRESS_LISTEN", &listen),
            ("BERTH_INGRESS_DIR", &dir),
            ("BERTH_RECONCILE_INTERVAL_SECONDS", "1"),
            ("BERTH_SITE_HEALTH_TIMEOUT_SECONDS", "15"),
        ];
        vars.extend_from_slice(extra);
        let mut app = Self::start(&vars, true).await;
        // nginx's workers (another user, see above) serve ACME challenges from a directory
        // under the data dir, which tempfile creates private.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&app.config.server.data_dir, std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        app.docker = Some(scope);
        app
    }

    /// Like [`spawn_runtime`](Self::spawn_runtime), with nginx also serving HTTPS on a free
    /// loopback port (`app.config.runtime.ingress_tls_listen`).
    pub async fn spawn_runtime_tls() -> Self {
        let tls = format!("127.0.0.1:{}", free_port());
        Self::spawn_runtime_with(&[("BERTH_INGRESS_TLS_LISTEN", &tls)]).await
    }

    /// The live sites configuration of this test's nginx.
    pub fn scope_ingress_sites(&self) -> std::path::PathBuf {
        self.scope()._ingress_dir.path().join("sites.conf")
    }

    pub fn scope(&self) -> &DockerScope {
        self.docker.as_ref().expect("spawned with spawn_runtime")
    }

    /// Polls a site until `done` holds, failing with its last state after `timeout`.
    pub async fn wait_site(
        &self,
        client: &Client,
        id: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let res = client.get(&format!("/api/v1/sites/{id}")).await;
            if res.status == StatusCode::OK && done(&res.body) {
                return res.body;
            }
            if Instant::now() > deadline {
                panic!("site {id} did not reach the expected state within {timeout:?}: {} {}", res.status, res.text);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn wait_running(&self, client: &Client, id: &str) -> Value {
        self.wait_site(client, id, Duration::from_secs(60), |s| s["status"] == "running" && s["address"].is_string())
            .await
    }

    /// Creates a site and waits until it runs.
    pub async fn running_site(&self, client: &Client, customer_id: &str, name: &str, domain: &str) -> Value {
        let res = client
            .post("/api/v1/sites", &serde_json::json!({"customer_id": customer_id, "name": name, "domains": [domain]}))
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
        self.wait_running(client, &res.str("id")).await
    }

    /// GET / through this test's nginx with a Host header: (status, body).
    pub async fn through_ingress(&self, host: &str) -> (u16, String) {
        self.through_ingress_path(host, "/").await
    }

    /// GET `path`, sent verbatim (no client-side normalisation of `..` or `%2e`), through this
    /// test's nginx with a Host header: (status, whole response with headers); (0, "") when
    /// nginx does not answer.
    pub async fn through_ingress_path(&self, host: &str, path: &str) -> (u16, String) {
        get_via(self.scope().ingress, host, path, Duration::from_secs(5)).await
    }

    /// Polls the ingress until `host` answers `status`.
    pub async fn wait_ingress(&self, host: &str, status: u16) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (got, body) = self.through_ingress(host).await;
            if got == status {
                return body;
            }
            if Instant::now() > deadline {
                panic!("{host} answered {got} through nginx, not {status}: {body}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls the ingress until `host` answers `status` steadily, see [`wait_settled`].
    pub async fn wait_ingress_settled(&self, host: &str, status: u16) {
        wait_settled(self.scope().ingress, host, status).await
    }

    pub async fn containers(&self) -> Vec<berth_runtime::engine::ContainerInfo> {
        engine().containers(&self.scope().filter()).await.expect("list containers")
    }

    pub async fn inspect(&self, name: &str) -> ContainerInspectResponse {
        engine().client().inspect_container(name, None).await.expect("inspect container")
    }

    /// Runs a command in a container, giving up after `limit`: `None` when it did not finish.
    pub async fn exec_within(&self, limit: Duration, container: &str, argv: &[&str]) -> Option<(i64, String)> {
        tokio::time::timeout(limit, self.exec(container, argv)).await.ok()
    }

    /// Runs a command in a container: (exit code, output).
    pub async fn exec(&self, container: &str, argv: &[&str]) -> (i64, String) {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        use futures_util::StreamExt;
        let docker = engine();
        let exec = docker
            .client()
            .create_exec(
                container,
                CreateExecOptions {
                    cmd: Some(argv.iter().map(|s| s.to_string()).collect()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .expect("create exec");
        let mut out = String::new();
        if let StartExecResults::Attached { mut output, .. } =
            docker.client().start_exec(&exec.id, None).await.expect("start exec")
        {
            while let Some(Ok(chunk)) = output.next().await {
                out.push_str(&chunk.to_string());
            }
        }
        let code = docker.client().inspect_exec(&exec.id).await.expect("inspect exec").exit_code.unwrap_or(-1);
        (code, out)
    }

    /// Deletes every site of this test (purging volumes), waits for the reconciler to remove
    /// their containers and networks, and fails if any Berth object of this test is left.
    pub async fn finish(self) {
        let admin = self.admin().await;
        let list = admin.get("/api/v1/sites?limit=200").await;
        for site in list.body["items"].as_array().cloned().unwrap_or_default() {
            let id = site["id"].as_str().expect("id").to_owned();
            let res = admin.delete(&format!("/api/v1/sites/{id}?purge=true")).await;
            assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let e = engine();
        loop {
            let containers = e.containers(&self.scope().filter()).await.expect("containers");
            let networks = e.networks(&self.scope().filter()).await.expect("networks");
            let sites = admin.get("/api/v1/sites").await.body["items"].as_array().map_or(0, Vec::len);
            if containers.is_empty() && networks.is_empty() && sites == 0 {
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "test left Docker objects behind: containers {:?}, networks {networks:?}, sites {sites}",
                    containers.iter().map(|c| &c.name).collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.stop().await;
    }
}

/// The containers of a scope, as the engine lists them.
pub async fn engine_containers(scope: &DockerScope) -> Vec<berth_runtime::engine::ContainerInfo> {
    engine().containers(&scope.filter()).await.expect("list containers")
}

/// GET `path` from `addr` with a Host header on a fresh connection: (status, whole response
/// with headers); (0, "") when nothing answers within `limit`.
pub async fn get_via(addr: std::net::SocketAddr, host: &str, path: &str, limit: Duration) -> (u16, String) {
    let attempt = async {
        let mut conn = tokio::net::TcpStream::connect(addr).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        conn.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        conn.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).to_string();
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, text))
    };
    tokio::time::timeout(limit, attempt).await.ok().flatten().unwrap_or((0, String::new()))
}

/// Polls `addr` until `host` has answered `status` to every request for a whole second. Right
/// after a reload, nginx's workers of the previous configuration still take a few connections
/// until they notice they are to quit: one answer proves nothing about the next one.
pub async fn wait_settled(addr: std::net::SocketAddr, host: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut since: Option<Instant> = None;
    loop {
        let (got, body) = get_via(addr, host, "/", Duration::from_secs(5)).await;
        if got == status {
            let first = *since.get_or_insert_with(Instant::now);
            if first.elapsed() >= Duration::from_secs(1) {
                return;
            }
        } else {
            since = None;
        }
        assert!(Instant::now() < deadline, "{host} did not answer {status} steadily: {got} {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What visitors got while [`Traffic`] ran.
#[derive(Debug)]
pub struct TrafficReport {
    pub requests: usize,
    /// Answers other than 200 (status 0: no answer), as `+<ms since start> <status>`.
    pub failed: Vec<String>,
    /// Answers that took longer than [`Traffic::SLOW`], as `+<ms since start> <duration>`.
    pub slow: Vec<String>,
}

/// Continuous requests through an ingress for one host: `clients` loops, each sending the next
/// request on a fresh connection as soon as the last one is answered, until stopped.
pub struct Traffic {
    stop: tokio::sync::watch::Sender<bool>,
    clients: Vec<tokio::task::JoinHandle<TrafficReport>>,
}

impl Traffic {
    /// A visitor notices this: the tests want every answer faster.
    pub const SLOW: Duration = Duration::from_secs(2);

    pub fn start(addr: std::net::SocketAddr, host: &str, clients: usize) -> Self {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let started = Instant::now();
        let clients = (0..clients)
            .map(|_| {
                let rx = rx.clone();
                let host = host.to_owned();
                tokio::spawn(async move {
                    let mut report = TrafficReport { requests: 0, failed: Vec::new(), slow: Vec::new() };
                    while !*rx.borrow() {
                        let sent = Instant::now();
                        // Far above SLOW, so a hanging request is counted rather than waited for.
                        let (status, _) = get_via(addr, &host, "/", Duration::from_secs(10)).await;
                        let took = sent.elapsed();
                        let at = sent.duration_since(started).as_millis();
                        report.requests += 1;
                        if status != 200 {
                            report.failed.push(format!("+{at}ms {status}"));
                        }
                        if took > Self::SLOW {
                            report.slow.push(format!("+{at}ms {took:?}"));
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    report
                })
            })
            .collect();
        Self { stop, clients }
    }

    pub async fn stop(self) -> TrafficReport {
        let _ = self.stop.send(true);
        let mut all = TrafficReport { requests: 0, failed: Vec::new(), slow: Vec::new() };
        for c in self.clients {
            let r = c.await.expect("traffic client");
            all.requests += r.requests;
            all.failed.extend(r.failed);
            all.slow.extend(r.slow);
        }
        all
    }
}

/// Labels of a container, as a map.
pub fn labels(c: &ContainerInspectResponse) -> HashMap<String, String> {
    c.config.as_ref().and_then(|c| c.labels.clone()).unwrap_or_default()
}
