//! Outside services a test starts for itself on loopback: a PowerDNS server (sqlite3 backend)
//! and an SMTP sink (aiosmtpd writing a Maildir). Each is killed when dropped.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database};
use tokio::process::{Child, Command};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port()
}

async fn wait_until(what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if ready().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not become ready within 30 s");
}

pub struct PowerDnsServer {
    pub api_url: String,
    pub api_key: String,
    /// The DNS (UDP/TCP) port, for resolvers such as pebble's.
    pub dns_port: u16,
    _child: Child,
    _dir: tempfile::TempDir,
}

const PDNS_SCHEMA: &str = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql";

impl PowerDnsServer {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_path = dir.path().join("pdns.sqlite3");
        let schema = std::fs::read_to_string(PDNS_SCHEMA)
            .unwrap_or_else(|e| panic!("{PDNS_SCHEMA}: {e} (scripts/test.sh installs pdns-backend-sqlite3)"));
        let db = Database::connect(format!("sqlite://{}?mode=rwc", db_path.display())).await.expect("pdns sqlite");
        db.execute_unprepared(&schema).await.expect("load pdns schema");
        db.close().await.ok();
        let (dns_port, api_port) = (free_port(), free_port());
        let api_key = format!("test-{}", uuid::Uuid::new_v4().simple());
        let conf = format!(
            "launch=gsqlite3\ngsqlite3-database={}\nlocal-address=127.0.0.1\nlocal-port={dns_port}\napi=yes\napi-key={api_key}\n\
             webserver=yes\nwebserver-address=127.0.0.1\nwebserver-port={api_port}\nwebserver-allow-from=127.0.0.0/8\n\
             daemon=no\nguardian=no\nsocket-dir={}\nwrite-pid=no\n",
            db_path.display(),
            dir.path().display()
        );
        std::fs::write(dir.path().join("pdns.conf"), conf).expect("pdns.conf");
        let child = Command::new("pdns_server")
            .arg(format!("--config-dir={}", dir.path().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("pdns_server is installed by scripts/test.sh");
        let api_url = format!("http://127.0.0.1:{api_port}");
        let probe = format!("{api_url}/api/v1/servers/localhost");
        let key = api_key.clone();
        wait_until("pdns_server", async || {
            let res = reqwest::Client::new().get(&probe).header("X-API-Key", &key).send().await;
            res.is_ok_and(|r| r.status().is_success())
        })
        .await;
        Self { api_url, api_key, dns_port, _child: child, _dir: dir }
    }
}

/// Debian's `pebble` ACME test server, resolving names through `dns_port` and validating
/// HTTP-01 challenges on `http_port`. Its HTTPS listener uses a self-signed certificate
/// (`ca_root`) the client must trust.
pub struct Pebble {
    pub directory_url: String,
    pub management_url: String,
    pub ca_root: PathBuf,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl Pebble {
    pub async fn start(dns_port: u16, http_port: u16) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let listen = berth_integrations::tls::self_signed(&["localhost".into()]).expect("pebble's certificate");
        let ca_root = dir.path().join("pebble-listener.pem");
        std::fs::write(&ca_root, &listen.chain_pem).expect("cert");
        std::fs::write(dir.path().join("pebble-listener.key"), &listen.key_pem).expect("key");
        let (port, mgmt) = (free_port(), free_port());
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt}"),
            "certificate": ca_root,
            "privateKey": dir.path().join("pebble-listener.key"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        let config_path = dir.path().join("pebble.json");
        std::fs::write(&config_path, config.to_string()).expect("pebble.json");
        let child = Command::new("pebble")
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            // Deterministic: no artificial validation delays, no random nonce rejections.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("pebble is installed by scripts/test.sh");
        wait_until("pebble", async || tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()).await;
        Self {
            directory_url: format!("https://localhost:{port}/dir"),
            management_url: format!("https://localhost:{mgmt}"),
            ca_root,
            _child: child,
            _dir: dir,
        }
    }

    /// The root that signs pebble's issued certificates (random per run).
    pub async fn issuing_root(&self) -> String {
        let cert = reqwest::Certificate::from_pem(&std::fs::read(&self.ca_root).expect("ca")).expect("pem");
        let client = reqwest::Client::builder().add_root_certificate(cert).build().expect("client");
        let res = client.get(format!("{}/roots/0", self.management_url)).send().await.expect("roots");
        res.text().await.expect("pem")
    }
}

pub struct SmtpSink {
    pub url: String,
    maildir: PathBuf,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let maildir = dir.path().join("maildir");
        let port = free_port();
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 with aiosmtpd is installed by scripts/test.sh");
        wait_until("the SMTP sink", async || tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()).await;
        Self { url: format!("smtp://127.0.0.1:{port}"), maildir, _child: child, _dir: dir }
    }

    /// Every message received so far, as raw RFC 5322 text.
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else { return Vec::new() };
        entries.filter_map(|e| e.ok()).filter_map(|e| std::fs::read_to_string(e.path()).ok()).collect()
    }

    /// Waits for `n` messages (polling; SMTP delivery completes before `send` returns, but the
    /// sink writes the file a moment later).
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found = self.messages();
            if found.len() >= n || Instant::now() > deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// An S3-compatible server on loopback: moto's server (PyPI `moto[server]`, installed by
/// scripts/test.sh), with one bucket made for the test. Its listings are what restic's client
/// expects (an empty `delimiter=` included), so `restic check` works against it.
pub struct S3Server {
    /// `http://127.0.0.1:<port>`
    pub endpoint: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    _child: Child,
}

impl S3Server {
    pub async fn start() -> Self {
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("moto_server is installed by scripts/test.sh (pip install 'moto[server]')");
        let endpoint = format!("http://127.0.0.1:{port}");
        let probe = format!("{endpoint}/");
        wait_until("moto_server", async || reqwest::Client::new().get(&probe).send().await.is_ok()).await;
        let bucket = format!("berth-test-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        // moto does not check signatures: a bare PUT makes the bucket.
        let res = reqwest::Client::new().put(format!("{endpoint}/{bucket}")).send().await.expect("create bucket");
        assert!(res.status().is_success(), "creating bucket {bucket}: {}", res.status());
        Self {
            endpoint,
            bucket,
            access_key_id: "berth-test".into(),
            secret_access_key: "berth-test-secret".into(),
            _child: child,
        }
    }

    /// The `BERTH_BACKUP_*` settings that store repositories in this server's bucket.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("BERTH_BACKUP_TARGET", "s3".into()),
            ("BERTH_BACKUP_S3_ENDPOINT", self.endpoint.clone()),
            ("BERTH_BACKUP_S3_BUCKET", self.bucket.clone()),
            ("BERTH_BACKUP_S3_ACCESS_KEY_ID", self.access_key_id.clone()),
            ("BERTH_BACKUP_S3_SECRET_ACCESS_KEY", self.secret_access_key.clone()),
        ]
    }
}
