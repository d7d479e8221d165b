//! The `berth` binary as a person runs it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{Client, TestApp};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// A command with no BERTH_* variables from the environment running the tests.
pub(crate) fn berth(dir: &Path) -> Command {
    let mut cmd = Command::new(BERTH);
    cmd.current_dir(dir).env_clear();
    for key in ["PATH", "HOME"] {
        if let Ok(v) = std::env::var(key) {
            cmd.env(key, v);
        }
    }
    // These tests are about start-up and configuration: no containers, no nginx of their own
    // (tests/runtime covers those with a per-test Docker prefix and ingress port).
    cmd.env("BERTH_DOCKER_HOST", "off").env("BERTH_INGRESS_MODE", "off");
    cmd
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port()
}

pub(crate) struct Running {
    pub child: tokio::process::Child,
    pub lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

async fn start_serve(dir: &Path, port: u16) -> Running {
    start_serve_with(dir, port, &[]).await
}

/// `berth serve` in `dir` on the embedded default, with `extra` settings, once healthy.
pub(crate) async fn start_serve_with(dir: &Path, port: u16, extra: &[(&str, &str)]) -> Running {
    let mut cmd = tokio::process::Command::from(berth(dir));
    cmd.envs(extra.iter().copied());
    cmd.args(["serve"])
        .env("BERTH_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn berth serve");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running { child, lines: BufReader::new(stdout).lines() };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.is_ok_and(|r| r.status().is_success()) {
            return running;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("berth serve did not become healthy");
}

#[tokio::test]
async fn embedded_default_smoke() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut first = start_serve(dir.path(), port).await;
    let line = tokio::time::timeout(Duration::from_secs(10), first.lines.next_line())
        .await
        .expect("a line on stdout")
        .expect("read")
        .expect("line");
    let rest = line.strip_prefix("Admin login: ").unwrap_or_else(|| panic!("unexpected first line: {line}"));
    let (email, password) = rest.split_once(" / ").expect("email / password");
    assert_eq!(email, "admin@localhost");
    assert!(password.len() >= 16);

    let base = format!("http://127.0.0.1:{port}");
    let mut admin = Client::new(&base);
    admin.login(email, password).await;
    let customer = admin
        .post("/api/v1/customers", &json!({"email": "first@example.com", "company_name": "First", "plan": "starter"}))
        .await;
    assert_eq!(customer.status, StatusCode::CREATED, "{}", customer.text);
    let site = admin
        .post("/api/v1/sites", &json!({"customer_id": customer.str("id"), "name": "hello", "env": {"GREETING": "hi"}}))
        .await;
    assert_eq!(site.status, StatusCode::CREATED, "{}", site.text);

    // Embedded state lives in ./data: SQLite and a private secret key.
    let data = dir.path().join("data");
    assert!(data.join("berth.db").exists());
    let key = data.join("secret.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).expect("key").permissions().mode() & 0o777, 0o600);
    }
    first.child.kill().await.expect("stop");

    // A restart keeps everything and prints no second admin line.
    let mut second = start_serve(dir.path(), port).await;
    let mut again = Client::new(&base);
    again.login(email, password).await;
    let got = again.get(&format!("/api/v1/sites/{}", site.str("id"))).await;
    assert_eq!(got.body["env"]["GREETING"], "hi", "the persisted key still opens sealed values");
    second.child.kill().await.expect("stop");
    let leftover = tokio::time::timeout(Duration::from_secs(5), second.lines.next_line()).await;
    if let Ok(Ok(Some(line))) = leftover {
        assert!(!line.starts_with("Admin login:"), "admin line printed twice: {line}");
    }
}

#[test]
fn config_check_prints_settings_with_secrets_masked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = berth(dir.path()).args(["config", "check"]).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("BERTH_LISTEN = 127.0.0.1:8080"), "{text}");
    assert!(text.contains("(embedded default)"), "{text}");

    let out = berth(dir.path())
        .args(["config", "check"])
        .env("BERTH_SECRET_KEY", "a-very-secret-key-that-is-long-enough-1234")
        .env("BERTH_BOOTSTRAP_ADMIN_PASSWORD", "Bootstrap-Password-77")
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("BERTH_SECRET_KEY = ********"), "{text}");
    assert!(!text.contains("a-very-secret") && !text.contains("Bootstrap-Password"), "{text}");
}

#[test]
fn config_check_lists_every_problem_on_its_own_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = berth(dir.path())
        .args(["config", "check"])
        .env("BERTH_LISTEN", "everywhere")
        .env("BERTH_SECRET_KEY", "short")
        .env("BERTH_LOG_FORMAT", "xml")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines.iter().all(|l| l.starts_with("error: BERTH_")), "{err}");
    assert!(!err.contains("panicked"));
}

/// A trusted range that holds the customer networks would let any site forge X-Forwarded-For:
/// `config check` and `serve` both refuse it with one line (the README's old example included).
#[test]
fn trusted_proxies_overlapping_the_site_networks_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    for command in [&["config", "check"][..], &["serve"][..]] {
        let out = berth(dir.path())
            .args(command)
            .env("BERTH_TRUSTED_PROXIES", "10.0.0.0/8")
            .env("BERTH_LOG", "off")
            .output()
            .expect("run");
        assert!(!out.status.success(), "{command:?} accepted an overlap");
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{command:?}: {err}");
        assert!(
            lines[0]
                .starts_with("error: BERTH_TRUSTED_PROXIES: 10.0.0.0/8 overlaps BERTH_SITE_SUBNETS (10.213.0.0/16)"),
            "{command:?}: {err}"
        );
    }
    // The proxy's own address is fine.
    let out =
        berth(dir.path()).args(["config", "check"]).env("BERTH_TRUSTED_PROXIES", "10.0.0.2").output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("BERTH_TRUSTED_PROXIES = 10.0.0.2/32"));
}

/// The embedded database holds every password hash and customer: 0600 from the first start
/// (SQLite gives its journal files the same mode), and tightened at start when found readable.
#[cfg(unix)]
#[tokio::test]
async fn the_embedded_database_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let port = free_port();
    let mut first = start_serve(dir.path(), port).await;
    // Write something, so SQLite has opened its journal at least once.
    let base = format!("http://127.0.0.1:{port}");
    let health = reqwest::get(format!("{base}/readyz")).await.expect("readyz");
    assert_eq!(health.status(), StatusCode::OK);
    for entry in std::fs::read_dir(&data).expect("data dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with("berth.db") || name == "secret.key" {
            assert_eq!(mode(&path), 0o600, "{name} is readable by others");
        }
    }
    assert_eq!(mode(&data.join("berth.db")), 0o600);
    first.child.kill().await.expect("stop");
    let _ = first.child.wait().await;

    // An install from before: the database world-readable. The next start tightens it.
    std::fs::set_permissions(data.join("berth.db"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut second = start_serve(dir.path(), port).await;
    assert_eq!(mode(&data.join("berth.db")), 0o600);
    second.child.kill().await.expect("stop");
}

#[test]
fn unreachable_services_fail_start_up_with_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let cases = [
        (
            "BERTH_DATABASE_URL",
            format!("postgres://berth:pw-in-url@127.0.0.1:{port}/berth"),
            "cannot connect to database",
        ),
        ("BERTH_REDIS_URL", format!("redis://127.0.0.1:{port}/"), "cannot connect to Redis"),
        ("BERTH_DATABASE_URL", "postgres://[broken".to_owned(), "cannot connect to database"),
    ];
    for (var, value, expected) in cases {
        let out = berth(dir.path())
            .arg("serve")
            .env(var, &value)
            .env("BERTH_SECRET_KEY", "0123456789abcdef0123456789abcdef")
            .env("BERTH_LOG", "off")
            .output()
            .expect("run");
        assert!(!out.status.success(), "{var}={value} must fail");
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{var}: {err}");
        assert!(lines[0].starts_with("error: ") && lines[0].contains(expected), "{var}: {err}");
        assert!(!err.contains("pw-in-url"), "passwords are masked: {err}");
        assert!(!err.contains("panicked"));
    }
}

#[tokio::test]
async fn admin_token_and_migrate_commands() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = app.config.server.database_url.as_ref().expect("db url").expose().to_owned();
    let run = |args: &[&str]| {
        berth(dir.path())
            .args(args)
            .env("BERTH_DATABASE_URL", &db_url)
            .env("BERTH_SECRET_KEY", "0123456789abcdef0123456789abcdef")
            .env("BERTH_LOG", "off")
            .output()
            .expect("run")
    };
    let out = run(&["migrate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Database is up to date.");

    let out = run(&["admin", "create", "--email", "Ops@Example.com"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let password = line.strip_prefix("Admin login: ops@example.com / ").unwrap_or_else(|| panic!("{line}")).to_owned();
    app.client().login("ops@example.com", &password).await;

    let out = run(&["admin", "create", "--email", "ops@example.com"]);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);

    let out = run(&["token", "create", "--email", "ops@example.com", "--name", "deploy"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let me = Client::with_token(&app.base, &token).get("/api/v1/auth/me").await;
    assert_eq!(me.body["user"]["email"], "ops@example.com");

    let out = run(&["token", "create", "--email", "nobody@example.com"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no enabled user"));
}
