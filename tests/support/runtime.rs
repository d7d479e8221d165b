//! The test-app builder's runtime part: a real Docker engine and a real nginx per test.
//!
//! Each runtime test gets its own Docker prefix (`bt<random>`: container, network and volume
//! names and the `berth.instance` label), so parallel tests and leftovers of earlier runs never
//! collide, and its own nginx on a free loopback port. [`TestApp::finish`] deletes the test's
//! sites through the API and fails the test if any container or network is left; dropping the
//! app force-removes whatever carries the test's label, volumes included.

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

/// A test's Docker objects: everything labelled with its prefix.
pub struct DockerScope {
    pub names: Names,
    pub ingress: std::net::SocketAddr,
    _ingress_dir: tempfile::TempDir,
}

impl DockerScope {
    pub fn filter(&self) -> Vec<String> {
        self.names.label_filter()
    }
}

impl Drop for DockerScope {
    fn drop(&mut self) {
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port()
}

impl TestApp {
    /// The app with the container runtime, the reconciler (every second) and a managed nginx.
    pub async fn spawn_runtime() -> Self {
        Self::spawn_runtime_with(&[]).await
    }

    pub async fn spawn_runtime_with(extra: &[(&str, &str)]) -> Self {
        ensure_site_image().await;
        let prefix = format!("bt{}", &Uuid::new_v4().simple().to_string()[..10]);
        let ingress_dir = tempfile::tempdir().expect("ingress dir");
        // nginx's workers run as an unprivileged user when the tests run as root.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(ingress_dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let ingress: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let dir = ingress_dir.path().display().to_string();
        let listen = ingress.to_string();
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
        app.docker = Some(DockerScope { names: Names::new(&prefix), ingress, _ingress_dir: ingress_dir });
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
        let addr = self.scope().ingress;
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
        tokio::time::timeout(Duration::from_secs(5), attempt).await.ok().flatten().unwrap_or((0, String::new()))
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

/// Labels of a container, as a map.
pub fn labels(c: &ContainerInspectResponse) -> HashMap<String, String> {
    c.config.as_ref().and_then(|c| c.labels.clone()).unwrap_or_default()
}
