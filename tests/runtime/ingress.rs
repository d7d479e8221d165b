//! The data plane outlives the control plane: Berth's nginx keeps serving while `berth serve` is
//! killed outright and started again, the new Berth adopts the running nginx instead of starting
//! a second one, and `berth ingress stop` is what takes it down.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::runtime::{alive, ensure_site_image, get_via, signal, wait_settled, DockerScope, Traffic};
use crate::support::{pending_jobs, Client, TempDatabase, ADMIN_EMAIL, ADMIN_PASSWORD};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");
const HOST: &str = "keep.serving.test";

/// `berth` with exactly these settings (nothing from the environment running the tests).
fn berth(env: &[(String, String)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BERTH);
    cmd.env_clear();
    for key in ["PATH", "HOME"] {
        if let Ok(v) = std::env::var(key) {
            cmd.env(key, v);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// A `berth serve` process; killed (SIGKILL) if the test drops it.
struct Serve {
    child: tokio::process::Child,
    base: String,
}

impl Serve {
    async fn start(env: &[(String, String)], port: u16, log: &Path) -> Self {
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("serve log");
        let child = berth(env)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn berth serve");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if reqwest::get(format!("{base}/healthz")).await.is_ok_and(|r| r.status().is_success()) {
                return Self { child, base };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("berth serve did not become healthy: {}", std::fs::read_to_string(log).unwrap_or_default());
    }

    async fn admin(&self) -> Client {
        let mut c = Client::new(&self.base);
        c.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        c
    }

    /// SIGKILL: no shutdown code of Berth runs.
    async fn kill(mut self) {
        self.child.kill().await.expect("SIGKILL berth serve");
    }

    /// SIGTERM, as a service manager stops it; waits for a clean exit.
    async fn terminate(mut self) {
        signal(self.child.id().expect("running"), "TERM");
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("berth serve stops within 60 s of SIGTERM")
            .expect("wait");
        assert!(status.success(), "berth serve exited with {status}");
    }
}

/// Runs `berth ingress <command>` and returns what it printed; fails the test if it fails.
async fn ingress(env: &[(String, String)], command: &str) -> String {
    let out = berth(env).args(["ingress", command]).output().await.expect("run berth ingress");
    assert!(out.status.success(), "berth ingress {command}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn wait_site(admin: &Client, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let res = admin.get(&format!("/api/v1/sites/{id}")).await;
        if res.status == StatusCode::OK && done(&res.body) {
            return res.body;
        }
        assert!(Instant::now() < deadline, "site {id} did not reach the expected state: {}", res.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_answer(scope: &DockerScope, host: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (got, body) = get_via(scope.ingress, host, "/", Duration::from_secs(5)).await;
        if got == status {
            return;
        }
        assert!(Instant::now() < deadline, "{host} answered {got}, not {status}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every nginx master process started with this ingress directory as its prefix.
fn nginx_masters(dir: &Path) -> Vec<u32> {
    let prefix = dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("nginx: master process") && cmdline.split_whitespace().any(|w| w == prefix) && alive(pid) {
            found.push(pid);
        }
    }
    found
}

#[tokio::test]
async fn sites_answer_through_a_sigkill_and_restart_of_berth_serve() {
    ensure_site_image().await;
    let scope = DockerScope::new();
    let database = TempDatabase::create().await;
    let data = tempfile::tempdir().expect("data dir");
    // nginx's workers (another user when the tests run as root) serve ACME challenges from it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let log = data.path().join("serve.log");
    let port = crate::support::services::free_port();
    let env: Vec<(String, String)> = [
        ("BERTH_DATABASE_URL", database.url.clone()),
        ("BERTH_SECRET_KEY", berth_core::crypto::random_token("")),
        ("BERTH_DATA_DIR", data.path().display().to_string()),
        ("BERTH_LISTEN", format!("127.0.0.1:{port}")),
        ("BERTH_BOOTSTRAP_ADMIN_EMAIL", ADMIN_EMAIL.into()),
        ("BERTH_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD.into()),
        ("BERTH_LOG_FORMAT", "pretty".into()),
        ("BERTH_DOCKER_HOST", "unix:///var/run/docker.sock".into()),
        ("BERTH_DOCKER_PREFIX", scope.names.instance().into()),
        ("BERTH_INGRESS_MODE", "managed".into()),
        ("BERTH_INGRESS_LISTEN", scope.ingress.to_string()),
        ("BERTH_INGRESS_DIR", scope.ingress_dir().display().to_string()),
        ("BERTH_RECONCILE_INTERVAL_SECONDS", "1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    let first = Serve::start(&env, port, &log).await;
    let admin = first.admin().await;
    let customer = admin
        .post("/api/v1/customers", &json!({"email": "keep@serving.test", "company_name": "Keep", "plan": "business"}))
        .await;
    assert_eq!(customer.status, StatusCode::CREATED, "{}", customer.text);
    let site = admin
        .post("/api/v1/sites", &json!({"customer_id": customer.str("id"), "name": "keep", "domains": [HOST]}))
        .await;
    assert_eq!(site.status, StatusCode::CREATED, "{}", site.text);
    let id = site.str("id");
    wait_site(&admin, &id, |s| s["status"] == "running" && s["address"].is_string()).await;
    wait_settled(scope.ingress, HOST, 200).await;
    let nginx = scope.nginx_pid().expect("Berth's nginx runs");

    // Visitors keep coming while Berth is killed outright, stays down, and starts again.
    let traffic = Traffic::start(scope.ingress, HOST, 2);
    tokio::time::sleep(Duration::from_secs(1)).await;
    first.kill().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(alive(nginx), "nginx died with Berth");
    let second = Serve::start(&env, port, &log).await;
    // A few reconcile passes (every second here) with the adopted nginx.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let report = traffic.stop().await;
    assert!(report.requests > 50, "too few requests to prove anything: {report:?}");
    assert!(report.failed.is_empty(), "visitors got errors across the restart: {report:?}");
    assert!(report.slow.is_empty(), "visitors waited across the restart: {report:?}");
    // Adopted, not replaced: the same master, and only one for this directory.
    assert_eq!(scope.nginx_pid(), Some(nginx), "the restarted Berth did not adopt the running nginx");
    assert_eq!(nginx_masters(scope.ingress_dir()), vec![nginx], "a second nginx was started");

    // `berth ingress stop` takes the sites down and keeps them down, though Berth runs (and
    // supervises its nginx every second); `berth ingress start` brings them back.
    let said = ingress(&env, "stop").await;
    assert!(said.contains("Stopped"), "{said}");
    assert!(!alive(nginx), "nginx still runs after `berth ingress stop`");
    // Asserting that nothing happens takes some waiting: three reconcile passes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(nginx_masters(scope.ingress_dir()).is_empty(), "the running Berth started nginx again");
    assert!(tokio::net::TcpStream::connect(scope.ingress).await.is_err(), "something listens");
    ingress(&env, "start").await;
    wait_answer(&scope, HOST, 200).await;
    let nginx = scope.nginx_pid().expect("Berth's nginx runs again");

    // A clean stop of Berth leaves the sites served too.
    let admin = second.admin().await;
    let res = admin.delete(&format!("/api/v1/sites/{id}?purge=true")).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    let deadline = Instant::now() + Duration::from_secs(60);
    while admin.get(&format!("/api/v1/sites/{id}")).await.status != StatusCode::NOT_FOUND
        || !crate::support::runtime::engine_containers(&scope).await.is_empty()
    {
        assert!(Instant::now() < deadline, "the site was not deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    second.terminate().await;
    assert!(alive(nginx), "a clean stop of Berth stopped its nginx");
    wait_answer(&scope, HOST, 404).await;

    // `berth ingress stop` takes it down, with Berth stopped too.
    let said = ingress(&env, "stop").await;
    assert!(said.contains("Stopped"), "{said}");
    assert!(!alive(nginx), "nginx still runs after `berth ingress stop`");
    assert!(nginx_masters(scope.ingress_dir()).is_empty());
    assert!(tokio::net::TcpStream::connect(scope.ingress).await.is_err(), "something still listens");
    let db = sea_orm::Database::connect(&database.url).await.expect("db");
    let left = pending_jobs(&db).await;
    let _ = db.close().await;
    assert!(left.is_empty(), "jobs left in the queue: {left:?}");
}
