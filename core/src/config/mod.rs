//! Typed configuration, read from `BERTH_*` environment variables over an optional TOML file.
//!
//! Every setting, its variable and its default (docs/configuration.md says the same):
//!
//! | variable | TOML key | default |
//! |---|---|---|
//! | `BERTH_CONFIG` | — | none: path of an optional TOML file with the keys below |
//! | `BERTH_DATABASE_URL` | `database_url` | SQLite at `$BERTH_DATA_DIR/berth.db` |
//! | `BERTH_REDIS_URL` | `redis_url` | none: sessions, cache and rate limits in process |
//! | `BERTH_REDIS_PREFIX` | `redis_prefix` | `berth:` |
//! | `BERTH_LISTEN` | `listen` | `127.0.0.1:8080` |
//! | `BERTH_PUBLIC_URL` | `public_url` | `http://<listen>` (links in e-mails are built from it) |
//! | `BERTH_SECRET_KEY` | `secret_key` | generated once into `$BERTH_DATA_DIR/secret.key` (embedded only) |
//! | `BERTH_DATA_DIR` | `data_dir` | `./data` |
//! | `BERTH_BOOTSTRAP_ADMIN_EMAIL` | `bootstrap_admin_email` | `admin@localhost` |
//! | `BERTH_BOOTSTRAP_ADMIN_PASSWORD` | `bootstrap_admin_password` | random, printed once |
//! | `BERTH_TRUSTED_PROXIES` | `trusted_proxies` | none: comma-separated CIDRs whose X-Forwarded-For is believed |
//! | `BERTH_SESSION_TTL_MINUTES` | `session_ttl_minutes` | `720` (idle timeout) |
//! | `BERTH_LOGIN_LIMIT_PER_IP` | `login_limit_per_ip` | `20` attempts per window |
//! | `BERTH_LOGIN_LIMIT_PER_ACCOUNT` | `login_limit_per_account` | `5` failures per window |
//! | `BERTH_LOGIN_LIMIT_WINDOW_SECONDS` | `login_limit_window_seconds` | `900` |
//! | `BERTH_BASE_DOMAIN` | `base_domain` | none: the domain under which signup subdomains live (`shop.<base>`) |
//! | `BERTH_DNS_PROVIDER` | `dns_provider` | `none` (DNS managed elsewhere) or `powerdns` |
//! | `BERTH_PDNS_API_URL` | `pdns_api_url` | none: PowerDNS HTTP API, e.g. `http://127.0.0.1:8081` (required for `powerdns`) |
//! | `BERTH_PDNS_API_KEY` | `pdns_api_key` | none (required for `powerdns`) |
//! | `BERTH_PDNS_SERVER_ID` | `pdns_server_id` | `localhost` |
//! | `BERTH_DNS_TARGET` | `dns_target` | `127.0.0.1`: the address site records point at (the ingress) |
//! | `BERTH_SMTP_URL` | `smtp_url` | none: mail is written to `$BERTH_DATA_DIR/outbox/` instead (`smtp://host:port`, `smtp://user:pw@host:587?tls=required`, `smtps://…`) |
//! | `BERTH_MAIL_FROM` | `mail_from` | `Berth <berth@localhost>` |
//! | `BERTH_ACME_DIRECTORY_URL` | `acme_directory_url` | none: ACME off, sites get self-signed certificates |
//! | `BERTH_ACME_CA_ROOT` | `acme_ca_root` | none: PEM file of the ACME server's root, for private or test CAs |
//! | `BERTH_ACME_CONTACT` | `acme_contact` | none: e-mail the CA may write to about certificates |
//! | `BERTH_WEBHOOK_SECRET` | `webhook_secret` | none: the signup webhook answers 503 until it is set |
//! | `BERTH_WEBHOOK_SECRET_PREVIOUS` | `webhook_secret_previous` | none: also accepted, while rotating secrets |
//! | `BERTH_LOG_FORMAT` | `log_format` | `json` (or `pretty`) |
//! | `BERTH_LOG` | `log` | `info` (a tracing filter, e.g. `berth=debug,info`) |
//! | `BERTH_WORKER_QUEUES` | `worker_queues` | `default=8,short=8,long=2`: queues this process works and their concurrency |
//! | `BERTH_WORKER_LEASE_SECONDS` | `worker_lease_seconds` | `30`: a running job's lease (heartbeat every third) |
//! | `BERTH_WORKER_SHUTDOWN_SECONDS` | `worker_shutdown_seconds` | `30`: time running jobs get to finish on shutdown |
//! | `BERTH_JOB_RETENTION_DAYS` | `job_retention_days` | `7`: finished jobs and succeeded flow runs are kept this long |
//! | `BERTH_DOCKER_HOST` | `docker_host` | `unix:///var/run/docker.sock` when that socket exists, else `off` (no runtime) |
//! | `BERTH_DOCKER_PREFIX` | `docker_prefix` | `berth`: names Berth's Docker objects and fills their `berth.instance` label |
//! | `BERTH_INGRESS_MODE` | `ingress_mode` | `managed` when an nginx binary is found, else `off` (or `external`) |
//! | `BERTH_INGRESS_LISTEN` | `ingress_listen` | `127.0.0.1:8081` (managed mode: where Berth's nginx listens) |
//! | `BERTH_INGRESS_TLS_LISTEN` | `ingress_tls_listen` | none: no HTTPS; when set (e.g. `0.0.0.0:443`), hosts with a stored certificate are also served over TLS there |
//! | `BERTH_INGRESS_DIR` | `ingress_dir` | managed: `$BERTH_DATA_DIR/nginx`; external: required, a directory the system nginx includes |
//! | `BERTH_NGINX_BINARY` | `nginx_binary` | the first `nginx` in `/usr/sbin`, `/usr/local/sbin`, `/usr/bin` or `PATH` |
//! | `BERTH_RECONCILE_INTERVAL_SECONDS` | `reconcile_interval_seconds` | `5` |
//! | `BERTH_SITE_SUBNETS` | `site_subnets` | `10.213.0.0/16`: the IPv4 pool customer networks get their subnets from |
//! | `BERTH_SITE_SUBNET_PREFIX` | `site_subnet_prefix` | `26`: each customer network's size (/26 = 62 addresses) |
//! | `BERTH_SITE_HEALTH_TIMEOUT_SECONDS` | `site_health_timeout_seconds` | `30` (how long a replacement container gets to answer) |
//!
//! Loading never stops at the first problem: it returns one readable line per bad setting, so
//! `berth config check` can list them all.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use url::Url;

/// A value that must never reach a log or a terminal in clear.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// How Berth routes site traffic (see docs/configuration.md, "Runtime and ingress").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngressMode {
    /// Berth runs and supervises its own nginx process.
    Managed,
    /// Berth writes its server blocks into a directory the system nginx includes, and reloads it.
    External,
    Off,
}

impl IngressMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Managed => "managed",
            Self::External => "external",
            Self::Off => "off",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Explicit database URL; `None` means the embedded SQLite under `data_dir`.
    pub database_url: Option<Secret>,
    pub redis_url: Option<Secret>,
    pub redis_prefix: String,
    pub listen: SocketAddr,
    pub public_url: Url,
    pub secret_key: Option<Secret>,
    pub data_dir: PathBuf,
    pub bootstrap_admin_email: String,
    pub bootstrap_admin_password: Option<Secret>,
    pub trusted_proxies: Vec<IpNet>,
    pub session_ttl_minutes: i64,
    pub login_limit_per_ip: u32,
    pub login_limit_per_account: u32,
    pub login_limit_window_seconds: u64,
    pub log_format: LogFormat,
    pub log: String,
    pub base_domain: Option<String>,
    pub dns: DnsConfig,
    pub dns_target: std::net::IpAddr,
    pub smtp_url: Option<Secret>,
    pub mail_from: String,
    pub webhook_secret: Option<Secret>,
    pub webhook_secret_previous: Option<Secret>,
    pub acme_directory_url: Option<Url>,
    pub acme_ca_root: Option<PathBuf>,
    pub acme_contact: Option<String>,
    /// Workers: (queue name, concurrency) pairs this process works.
    pub worker_queues: Vec<(String, usize)>,
    pub worker_lease_seconds: u64,
    pub worker_shutdown_seconds: u64,
    pub job_retention_days: u32,
    /// The Docker engine; `None` turns the container runtime off.
    pub docker_host: Option<String>,
    pub docker_prefix: String,
    pub ingress_mode: IngressMode,
    pub ingress_listen: SocketAddr,
    /// Where the ingress serves HTTPS; `None`: HTTP only.
    pub ingress_tls_listen: Option<SocketAddr>,
    pub ingress_dir: PathBuf,
    pub nginx_binary: PathBuf,
    pub reconcile_interval_seconds: u64,
    pub site_health_timeout_seconds: u64,
    /// The pool customer networks' subnets come from (Docker's defaults hold ~30 networks).
    pub site_subnets: ipnet::Ipv4Net,
    pub site_subnet_prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsConfig {
    /// Berth creates no records: DNS is managed elsewhere.
    None,
    PowerDns {
        api_url: Url,
        api_key: Secret,
        server_id: String,
    },
}

/// The names every setting is known by, in the order `config check` prints them.
const KEYS: &[&str] = &[
    "database_url",
    "redis_url",
    "redis_prefix",
    "listen",
    "public_url",
    "secret_key",
    "data_dir",
    "bootstrap_admin_email",
    "bootstrap_admin_password",
    "trusted_proxies",
    "session_ttl_minutes",
    "login_limit_per_ip",
    "login_limit_per_account",
    "login_limit_window_seconds",
    "log_format",
    "log",
    "base_domain",
    "dns_provider",
    "pdns_api_url",
    "pdns_api_key",
    "pdns_server_id",
    "dns_target",
    "smtp_url",
    "mail_from",
    "webhook_secret",
    "webhook_secret_previous",
    "acme_directory_url",
    "acme_ca_root",
    "acme_contact",
    "worker_queues",
    "worker_lease_seconds",
    "worker_shutdown_seconds",
    "job_retention_days",
    "docker_host",
    "docker_prefix",
    "ingress_mode",
    "ingress_listen",
    "ingress_tls_listen",
    "ingress_dir",
    "nginx_binary",
    "reconcile_interval_seconds",
    "site_health_timeout_seconds",
    "site_subnets",
    "site_subnet_prefix",
];

/// Where Debian and most distributions install nginx, tried before `PATH`.
const NGINX_PLACES: &[&str] = &["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"];
const DOCKER_SOCKET: &str = "/var/run/docker.sock";

pub fn env_name(key: &str) -> String {
    format!("BERTH_{}", key.to_ascii_uppercase())
}

impl Config {
    /// Reads the process environment (and `BERTH_CONFIG` when set).
    pub fn from_env() -> Result<Self, Vec<String>> {
        Self::load(|name| std::env::var(name).ok())
    }

    /// Reads settings through `env` (a lookup by variable name), over the TOML file named by
    /// `BERTH_CONFIG`. Returns every problem found, one line each.
    pub fn load(env: impl Fn(&str) -> Option<String>) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let mut raw: BTreeMap<&'static str, String> = BTreeMap::new();

        if let Some(path) = env("BERTH_CONFIG").filter(|p| !p.is_empty()) {
            match read_file(Path::new(&path)) {
                Ok(table) => {
                    for (key, value) in table {
                        match KEYS.iter().find(|k| **k == key) {
                            Some(k) => {
                                raw.insert(k, value);
                            }
                            None => problems.push(format!("{path}: unknown setting `{key}`")),
                        }
                    }
                }
                Err(e) => problems.push(e),
            }
        }
        for key in KEYS {
            if let Some(value) = env(&env_name(key)) {
                raw.insert(key, value);
            }
        }
        let get = |key: &str| raw.get(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());

        let data_dir = PathBuf::from(get("data_dir").unwrap_or_else(|| "./data".into()));
        let listen = match get("listen") {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(v) => v.parse().unwrap_or_else(|_| {
                problems.push(format!("BERTH_LISTEN: `{v}` is not an address like 127.0.0.1:8080"));
                SocketAddr::from(([127, 0, 0, 1], 8080))
            }),
        };
        let public_url = match get("public_url") {
            None => default_public_url(listen),
            Some(v) => match Url::parse(&v) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
                _ => {
                    problems.push(format!("BERTH_PUBLIC_URL: `{v}` is not an http(s) URL"));
                    default_public_url(listen)
                }
            },
        };
        let database_url = get("database_url");
        if let Some(url) = &database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://") || url.starts_with("sqlite:")) {
                problems.push("BERTH_DATABASE_URL: must start with postgres://, postgresql:// or sqlite:".into());
            }
        }
        let redis_url = get("redis_url");
        if let Some(url) = &redis_url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://")) {
                problems.push("BERTH_REDIS_URL: must start with redis://, rediss:// or unix://".into());
            }
        }
        let secret_key = get("secret_key");
        match &secret_key {
            Some(k) if k.chars().count() < 32 => {
                problems.push("BERTH_SECRET_KEY: must be at least 32 characters (e.g. `openssl rand -hex 32`)".into())
            }
            None if database_url.as_deref().is_some_and(|u| !u.starts_with("sqlite:")) => problems
                .push("BERTH_SECRET_KEY: required with an external database, so every replica shares one key".into()),
            _ => {}
        }
        let bootstrap_admin_email = get("bootstrap_admin_email").unwrap_or_else(|| "admin@localhost".into());
        if !bootstrap_admin_email.contains('@') || bootstrap_admin_email.chars().any(char::is_whitespace) {
            problems.push("BERTH_BOOTSTRAP_ADMIN_EMAIL: must be an e-mail address".into());
        }
        let bootstrap_admin_password = get("bootstrap_admin_password");
        if let Some(p) = &bootstrap_admin_password {
            if let Err(msg) = crate::validate::password(p) {
                problems.push(format!("BERTH_BOOTSTRAP_ADMIN_PASSWORD: {msg}"));
            }
        }
        let mut trusted_proxies = Vec::new();
        for part in get("trusted_proxies").unwrap_or_default().split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match parse_net(part) {
                Some(net) => trusted_proxies.push(net),
                None => problems.push(format!("BERTH_TRUSTED_PROXIES: `{part}` is not an IP address or CIDR")),
            }
        }
        let mut number = |key: &str, default: u64, min: u64, max: u64| -> u64 {
            match get(key) {
                None => default,
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if (min..=max).contains(&n) => n,
                    _ => {
                        problems.push(format!("{}: `{v}` must be a whole number from {min} to {max}", env_name(key)));
                        default
                    }
                },
            }
        };
        let session_ttl_minutes = number("session_ttl_minutes", 720, 5, 60 * 24 * 30) as i64;
        let login_limit_per_ip = number("login_limit_per_ip", 20, 1, 100_000) as u32;
        let login_limit_per_account = number("login_limit_per_account", 5, 1, 1_000) as u32;
        let login_limit_window_seconds = number("login_limit_window_seconds", 900, 1, 86_400);
        let worker_lease_seconds = number("worker_lease_seconds", 30, 1, 3600);
        let worker_shutdown_seconds = number("worker_shutdown_seconds", 30, 0, 3600);
        let job_retention_days = number("job_retention_days", 7, 1, 3650) as u32;
        let reconcile_interval_seconds = number("reconcile_interval_seconds", 5, 1, 3_600);
        let site_health_timeout_seconds = number("site_health_timeout_seconds", 30, 1, 600);
        let site_subnet_prefix = number("site_subnet_prefix", 26, 16, 29) as u8;
        let worker_queues =
            parse_queues(get("worker_queues").as_deref().unwrap_or(DEFAULT_QUEUES)).unwrap_or_else(|e| {
                problems.push(format!("BERTH_WORKER_QUEUES: {e}"));
                Vec::new()
            });
        let log_format = match get("log_format").as_deref() {
            None | Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(v) => {
                problems.push(format!("BERTH_LOG_FORMAT: `{v}` must be json or pretty"));
                LogFormat::Json
            }
        };
        let log = get("log").unwrap_or_else(|| "info".into());
        let default_subnets = ipnet::Ipv4Net::new(std::net::Ipv4Addr::new(10, 213, 0, 0), 16).expect("static pool");
        let site_subnets = match get("site_subnets") {
            None => default_subnets,
            Some(v) => match v.parse::<ipnet::Ipv4Net>() {
                Ok(net) if net.prefix_len() <= site_subnet_prefix => net.trunc(),
                _ => {
                    problems.push(format!(
                        "BERTH_SITE_SUBNETS: `{v}` must be an IPv4 network at least as large as /{site_subnet_prefix}"
                    ));
                    default_subnets
                }
            },
        };
        let base_domain = get("base_domain").and_then(|d| match crate::validate::domain(&d) {
            Ok(d) => Some(d),
            Err(msg) => {
                problems.push(format!("BERTH_BASE_DOMAIN: `{d}` {msg}"));
                None
            }
        });
        let dns = match get("dns_provider").as_deref() {
            None | Some("none") => DnsConfig::None,
            Some("powerdns") => {
                let api_url = match get("pdns_api_url").map(|u| Url::parse(&u)) {
                    Some(Ok(u)) if matches!(u.scheme(), "http" | "https") => Some(u),
                    Some(_) => {
                        problems.push("BERTH_PDNS_API_URL: must be an http(s) URL".into());
                        None
                    }
                    None => {
                        problems.push("BERTH_PDNS_API_URL: required with BERTH_DNS_PROVIDER=powerdns".into());
                        None
                    }
                };
                let api_key = get("pdns_api_key");
                if api_key.is_none() {
                    problems.push("BERTH_PDNS_API_KEY: required with BERTH_DNS_PROVIDER=powerdns".into());
                }
                match (api_url, api_key) {
                    (Some(api_url), Some(key)) => DnsConfig::PowerDns {
                        api_url,
                        api_key: Secret(key),
                        server_id: get("pdns_server_id").unwrap_or_else(|| "localhost".into()),
                    },
                    _ => DnsConfig::None,
                }
            }
            Some(v) => {
                problems.push(format!("BERTH_DNS_PROVIDER: `{v}` must be none or powerdns"));
                DnsConfig::None
            }
        };
        let dns_target = match get("dns_target") {
            None => std::net::IpAddr::from([127, 0, 0, 1]),
            Some(v) => v.parse().unwrap_or_else(|_| {
                problems.push(format!("BERTH_DNS_TARGET: `{v}` is not an IP address"));
                std::net::IpAddr::from([127, 0, 0, 1])
            }),
        };
        let smtp_url = get("smtp_url");
        if let Some(url) = &smtp_url {
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                problems.push("BERTH_SMTP_URL: must start with smtp:// or smtps://".into());
            }
        }
        let mail_from = get("mail_from").unwrap_or_else(|| "Berth <berth@localhost>".into());
        if !mail_from.contains('@') || mail_from.contains(['\r', '\n']) {
            problems.push("BERTH_MAIL_FROM: must be an address like `Berth <noreply@example.com>`".into());
        }
        let acme_directory_url = get("acme_directory_url").and_then(|u| match Url::parse(&u) {
            Ok(url) if url.scheme() == "https" => Some(url),
            _ => {
                problems.push(format!("BERTH_ACME_DIRECTORY_URL: `{u}` must be an https URL"));
                None
            }
        });
        let acme_ca_root = get("acme_ca_root").map(PathBuf::from);
        if let Some(path) = &acme_ca_root {
            if !path.is_file() {
                problems.push(format!("BERTH_ACME_CA_ROOT: {} is not a readable file", path.display()));
            }
        }
        let acme_contact = get("acme_contact");
        if let Some(c) = &acme_contact {
            if crate::validate::email(c).is_err() {
                problems.push(format!("BERTH_ACME_CONTACT: `{c}` is not an e-mail address"));
            }
        }
        let webhook_secret = get("webhook_secret");
        let webhook_secret_previous = get("webhook_secret_previous");
        for (name, value) in
            [("BERTH_WEBHOOK_SECRET", &webhook_secret), ("BERTH_WEBHOOK_SECRET_PREVIOUS", &webhook_secret_previous)]
        {
            if value.as_ref().is_some_and(|v| v.len() < 16) {
                problems.push(format!("{name}: must be at least 16 characters"));
            }
        }
        let redis_prefix = get("redis_prefix").unwrap_or_else(|| "berth:".into());
        let runtime = runtime_settings(&get, &data_dir, &mut problems);

        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Config {
            database_url: database_url.map(Secret),
            redis_url: redis_url.map(Secret),
            redis_prefix,
            listen,
            public_url,
            secret_key: secret_key.map(Secret),
            data_dir,
            bootstrap_admin_email,
            bootstrap_admin_password: bootstrap_admin_password.map(Secret),
            trusted_proxies,
            session_ttl_minutes,
            login_limit_per_ip,
            login_limit_per_account,
            login_limit_window_seconds,
            log_format,
            log,
            base_domain,
            dns,
            dns_target,
            smtp_url: smtp_url.map(Secret),
            mail_from,
            webhook_secret: webhook_secret.map(Secret),
            webhook_secret_previous: webhook_secret_previous.map(Secret),
            acme_directory_url,
            acme_ca_root,
            acme_contact,
            worker_queues,
            worker_lease_seconds,
            worker_shutdown_seconds,
            job_retention_days,
            docker_host: runtime.docker_host,
            docker_prefix: runtime.docker_prefix,
            ingress_mode: runtime.ingress_mode,
            ingress_listen: runtime.ingress_listen,
            ingress_tls_listen: runtime.ingress_tls_listen,
            ingress_dir: runtime.ingress_dir,
            nginx_binary: runtime.nginx_binary,
            reconcile_interval_seconds,
            site_health_timeout_seconds,
            site_subnets,
            site_subnet_prefix,
        })
    }

    /// The database URL in force: the configured one, or SQLite in the data dir.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_owned(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("berth.db").display()),
        }
    }

    /// Where site certificates are stored (`<host>/fullchain.pem`, `privkey.pem`, `issuer`):
    /// written by onboarding, read by the ingress. One definition so both agree.
    pub fn tls_dir(&self) -> PathBuf {
        self.data_dir.join("tls")
    }

    /// Where ACME HTTP-01 key authorisations are published, one file per token: written by the
    /// ACME issuer, served by the ingress at `/.well-known/acme-challenge/<token>`.
    pub fn acme_challenge_dir(&self) -> PathBuf {
        self.data_dir.join("acme-challenges")
    }

    /// True when Berth runs on its embedded default (SQLite, no external services required).
    pub fn is_embedded(&self) -> bool {
        self.database_url.as_ref().is_none_or(|u| u.expose().starts_with("sqlite:"))
    }

    /// Cookies are marked Secure whenever Berth is reached over TLS.
    pub fn cookie_secure(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// Builds a link under the public URL; never from a request's Host header.
    pub fn public_link(&self, path_and_query: &str) -> String {
        let base = self.public_url.as_str().trim_end_matches('/');
        format!("{base}{path_and_query}")
    }

    /// The configuration in force, one `NAME = value` line per setting, secrets masked.
    pub fn describe(&self) -> Vec<String> {
        let value = |key: &str| -> String {
            match key {
                "database_url" => self.database_url.as_ref().map_or_else(
                    || format!("{} (embedded default)", self.effective_database_url()),
                    |u| mask_url(u.expose()),
                ),
                "redis_url" => {
                    self.redis_url.as_ref().map_or("(none: in-process store)".into(), |u| mask_url(u.expose()))
                }
                "redis_prefix" => self.redis_prefix.clone(),
                "listen" => self.listen.to_string(),
                "public_url" => self.public_url.to_string(),
                "secret_key" => match &self.secret_key {
                    Some(_) => "********".into(),
                    None => format!("(generated, kept in {})", self.data_dir.join("secret.key").display()),
                },
                "data_dir" => self.data_dir.display().to_string(),
                "bootstrap_admin_email" => self.bootstrap_admin_email.clone(),
                "bootstrap_admin_password" => self
                    .bootstrap_admin_password
                    .as_ref()
                    .map_or("(random, printed once)".into(), |_| "********".into()),
                "trusted_proxies" => self.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
                "session_ttl_minutes" => self.session_ttl_minutes.to_string(),
                "login_limit_per_ip" => self.login_limit_per_ip.to_string(),
                "login_limit_per_account" => self.login_limit_per_account.to_string(),
                "login_limit_window_seconds" => self.login_limit_window_seconds.to_string(),
                "log_format" => format!("{:?}", self.log_format).to_lowercase(),
                "log" => self.log.clone(),
                "base_domain" => self.base_domain.clone().unwrap_or_else(|| "(none)".into()),
                "dns_provider" => match &self.dns {
                    DnsConfig::None => "none".into(),
                    DnsConfig::PowerDns { .. } => "powerdns".into(),
                },
                "pdns_api_url" => match &self.dns {
                    DnsConfig::PowerDns { api_url, .. } => api_url.to_string(),
                    DnsConfig::None => "(unused)".into(),
                },
                "pdns_api_key" => match &self.dns {
                    DnsConfig::PowerDns { .. } => "********".into(),
                    DnsConfig::None => "(unused)".into(),
                },
                "pdns_server_id" => match &self.dns {
                    DnsConfig::PowerDns { server_id, .. } => server_id.clone(),
                    DnsConfig::None => "(unused)".into(),
                },
                "dns_target" => self.dns_target.to_string(),
                "smtp_url" => self.smtp_url.as_ref().map_or_else(
                    || format!("(none: mail goes to {})", self.data_dir.join("outbox").display()),
                    |u| mask_url(u.expose()),
                ),
                "mail_from" => self.mail_from.clone(),
                "webhook_secret" | "webhook_secret_previous" => {
                    let set =
                        if key == "webhook_secret" { &self.webhook_secret } else { &self.webhook_secret_previous };
                    set.as_ref().map_or("(none)".into(), |_| "********".into())
                }
                "acme_directory_url" => {
                    self.acme_directory_url.as_ref().map_or("(none: self-signed certificates)".into(), Url::to_string)
                }
                "acme_ca_root" => {
                    self.acme_ca_root.as_ref().map_or("(system roots)".into(), |p| p.display().to_string())
                }
                "acme_contact" => self.acme_contact.clone().unwrap_or_else(|| "(none)".into()),
                "worker_queues" => {
                    self.worker_queues.iter().map(|(q, n)| format!("{q}={n}")).collect::<Vec<_>>().join(",")
                }
                "worker_lease_seconds" => self.worker_lease_seconds.to_string(),
                "worker_shutdown_seconds" => self.worker_shutdown_seconds.to_string(),
                "job_retention_days" => self.job_retention_days.to_string(),
                "docker_host" => self.docker_host.clone().unwrap_or_else(|| "off".into()),
                "docker_prefix" => self.docker_prefix.clone(),
                "ingress_mode" => self.ingress_mode.as_str().into(),
                "ingress_listen" => self.ingress_listen.to_string(),
                "ingress_tls_listen" => self.ingress_tls_listen.map_or("(none: HTTP only)".into(), |a| a.to_string()),
                "ingress_dir" => self.ingress_dir.display().to_string(),
                "nginx_binary" => self.nginx_binary.display().to_string(),
                "reconcile_interval_seconds" => self.reconcile_interval_seconds.to_string(),
                "site_health_timeout_seconds" => self.site_health_timeout_seconds.to_string(),
                "site_subnets" => self.site_subnets.to_string(),
                "site_subnet_prefix" => self.site_subnet_prefix.to_string(),
                _ => String::new(),
            }
        };
        KEYS.iter().map(|k| format!("{} = {}", env_name(k), value(k))).collect()
    }
}

const DEFAULT_QUEUES: &str = "default=8,short=8,long=2";

/// `name=concurrency` pairs separated by commas, e.g. `default=8,short=8,long=2`.
fn parse_queues(value: &str) -> Result<Vec<(String, usize)>, String> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, n) = part.split_once('=').ok_or_else(|| format!("`{part}` is not name=concurrency"))?;
        let name = name.trim();
        let valid = !name.is_empty()
            && name.len() <= 32
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid {
            return Err(format!("`{name}` is not a queue name (a-z, 0-9, _ and -, at most 32)"));
        }
        let n: usize = n
            .trim()
            .parse()
            .ok()
            .filter(|n| (1..=1024).contains(n))
            .ok_or_else(|| format!("concurrency of `{name}` must be a whole number from 1 to 1024"))?;
        if out.iter().any(|(q, _)| q == name) {
            return Err(format!("queue `{name}` is listed twice"));
        }
        out.push((name.to_owned(), n));
    }
    if out.is_empty() {
        return Err("name at least one queue".into());
    }
    Ok(out)
}

struct RuntimeSettings {
    docker_host: Option<String>,
    docker_prefix: String,
    ingress_mode: IngressMode,
    ingress_listen: SocketAddr,
    ingress_tls_listen: Option<SocketAddr>,
    ingress_dir: PathBuf,
    nginx_binary: PathBuf,
}

/// The container runtime and ingress settings. Their defaults look at this machine (a Docker
/// socket, an nginx binary) so the embedded default runs sites with no configuration at all.
fn runtime_settings(
    get: &dyn Fn(&str) -> Option<String>,
    data_dir: &Path,
    problems: &mut Vec<String>,
) -> RuntimeSettings {
    let docker_host = match get("docker_host").as_deref() {
        Some("off") => None,
        Some(h) if h.starts_with("unix://") || h.starts_with("tcp://") || h.starts_with("http://") => {
            Some(h.to_owned())
        }
        Some(h) => {
            problems.push(format!("BERTH_DOCKER_HOST: `{h}` must start with unix://, tcp:// or http://, or be off"));
            None
        }
        None => Path::new(DOCKER_SOCKET).exists().then(|| format!("unix://{DOCKER_SOCKET}")),
    };
    let docker_prefix = get("docker_prefix").unwrap_or_else(|| "berth".into());
    // The prefix becomes part of container, network and volume names: a strict grammar.
    let prefix_ok = docker_prefix.len() <= 24
        && docker_prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && docker_prefix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !prefix_ok {
        problems.push("BERTH_DOCKER_PREFIX: 1 to 24 lowercase letters and digits, starting with a letter".into());
    }
    let nginx_binary = match get("nginx_binary") {
        Some(p) => PathBuf::from(p),
        None => find_nginx().unwrap_or_else(|| PathBuf::from("nginx")),
    };
    let ingress_mode = match get("ingress_mode").as_deref() {
        None => {
            if nginx_binary.is_file() {
                IngressMode::Managed
            } else {
                IngressMode::Off
            }
        }
        Some("managed") => IngressMode::Managed,
        Some("external") => IngressMode::External,
        Some("off") => IngressMode::Off,
        Some(v) => {
            problems.push(format!("BERTH_INGRESS_MODE: `{v}` must be managed, external or off"));
            IngressMode::Off
        }
    };
    let ingress_listen = match get("ingress_listen") {
        None => SocketAddr::from(([127, 0, 0, 1], 8081)),
        Some(v) => v.parse().unwrap_or_else(|_| {
            problems.push(format!("BERTH_INGRESS_LISTEN: `{v}` is not an address like 0.0.0.0:80"));
            SocketAddr::from(([127, 0, 0, 1], 8081))
        }),
    };
    let ingress_tls_listen = get("ingress_tls_listen").and_then(|v| match v.parse::<SocketAddr>() {
        Ok(a) if a == ingress_listen => {
            problems
                .push(format!("BERTH_INGRESS_TLS_LISTEN: `{v}` is BERTH_INGRESS_LISTEN too; HTTPS needs its own port"));
            None
        }
        Ok(a) => Some(a),
        Err(_) => {
            problems.push(format!("BERTH_INGRESS_TLS_LISTEN: `{v}` is not an address like 0.0.0.0:443"));
            None
        }
    });
    let ingress_dir = match get("ingress_dir") {
        Some(d) => PathBuf::from(d),
        None => {
            if ingress_mode == IngressMode::External {
                problems.push(
                    "BERTH_INGRESS_DIR: required in external mode (a directory the system nginx includes)".into(),
                );
            }
            data_dir.join("nginx")
        }
    };
    RuntimeSettings {
        docker_host,
        docker_prefix,
        ingress_mode,
        ingress_listen,
        ingress_tls_listen,
        ingress_dir,
        nginx_binary,
    }
}

fn find_nginx() -> Option<PathBuf> {
    let fixed = NGINX_PLACES.iter().map(PathBuf::from);
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("nginx")).collect())
        .unwrap_or_default();
    fixed.chain(on_path).find(|p| p.is_file())
}

fn default_public_url(listen: SocketAddr) -> Url {
    // Parsing a formatted socket address with a scheme cannot fail; fall back defensively anyway.
    Url::parse(&format!("http://{listen}")).unwrap_or_else(|_| Url::parse("http://127.0.0.1:8080").expect("static URL"))
}

fn parse_net(value: &str) -> Option<IpNet> {
    value.parse::<IpNet>().ok().or_else(|| value.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

/// Hides the password part of a URL such as postgres://user:pw@host/db.
pub fn mask_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("********"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "(unparsable URL)".into(),
    }
}

fn read_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("BERTH_CONFIG: cannot read {}: {e}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{}: not valid TOML: {}", path.display(), e.message()))?;
    let mut out = Vec::new();
    for (key, value) in table {
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .into_iter()
                .map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
                .collect::<Vec<_>>()
                .join(","),
            other => return Err(format!("{}: `{key}` has an unsupported value {other}", path.display())),
        };
        out.push((key, text));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, Vec<String>> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::load(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        let cfg = load(&[]).expect("defaults are valid");
        assert!(cfg.is_embedded());
        assert_eq!(cfg.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(cfg.public_url.as_str(), "http://127.0.0.1:8080/");
        assert!(cfg.effective_database_url().starts_with("sqlite://./data/berth.db"));
        assert!(!cfg.cookie_secure());
    }

    #[test]
    fn every_problem_is_reported_once() {
        let problems = load(&[
            ("BERTH_LISTEN", "nowhere"),
            ("BERTH_DATABASE_URL", "mysql://x"),
            ("BERTH_SECRET_KEY", "short"),
            ("BERTH_TRUSTED_PROXIES", "10.0.0.0/8, banana"),
            ("BERTH_LOGIN_LIMIT_PER_IP", "-3"),
        ])
        .expect_err("bad config");
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("BERTH_LISTEN:")));
        assert!(problems.iter().any(|p| p.contains("banana")));
    }

    #[test]
    fn external_database_needs_a_secret_key() {
        let problems = load(&[("BERTH_DATABASE_URL", "postgres://u:pw@db/berth")]).expect_err("no key");
        assert!(problems[0].starts_with("BERTH_SECRET_KEY:"));
    }

    #[test]
    fn describe_masks_secrets() {
        let cfg = load(&[
            ("BERTH_DATABASE_URL", "postgres://u:hunter2hunter2@db/berth"),
            ("BERTH_SECRET_KEY", "0123456789abcdef0123456789abcdef"),
        ])
        .expect("valid");
        let text = cfg.describe().join("\n");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("0123456789abcdef"), "{text}");
        assert!(text.contains("BERTH_SECRET_KEY = ********"));
        assert!(format!("{cfg:?}").find("hunter2").is_none());
    }

    #[test]
    fn toml_file_is_read_and_environment_wins() {
        let path = std::env::temp_dir().join(format!("berth-config-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\nlog = \"debug\"\ntrusted_proxies = [\"10.0.0.0/8\", \"192.168.1.1\"]\n",
        )
        .expect("write temp config");
        let file = path.display().to_string();
        let cfg = load(&[("BERTH_CONFIG", &file), ("BERTH_LOG", "warn")]).expect("valid");
        assert_eq!(cfg.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(cfg.log, "warn");
        assert_eq!(cfg.trusted_proxies.len(), 2);

        std::fs::write(&path, "listen = \"0.0.0.0:9000\"\ncolour = \"blue\"\n").expect("write temp config");
        let problems = load(&[("BERTH_CONFIG", &file)]).expect_err("unknown key");
        assert!(problems[0].contains("unknown setting `colour`"), "{problems:?}");
        std::fs::write(&path, "listen = ").expect("write temp config");
        assert!(load(&[("BERTH_CONFIG", &file)]).expect_err("bad toml")[0].contains("not valid TOML"));
        std::fs::remove_file(&path).ok();
        let missing = load(&[("BERTH_CONFIG", "/nonexistent/berth.toml")]).expect_err("missing file");
        assert!(missing[0].starts_with("BERTH_CONFIG: cannot read"));
    }

    #[test]
    fn worker_queues_parse_and_reject_nonsense() {
        let cfg = load(&[]).expect("defaults");
        assert_eq!(cfg.worker_queues, vec![("default".into(), 8), ("short".into(), 8), ("long".into(), 2)]);
        let cfg = load(&[("BERTH_WORKER_QUEUES", " default=3 , mail=1")]).expect("valid");
        assert_eq!(cfg.worker_queues, vec![("default".into(), 3), ("mail".into(), 1)]);
        for bad in ["default", "default=0", "Default=1", "a=1,a=2", ",", "x=9999"] {
            let problems = load(&[("BERTH_WORKER_QUEUES", bad)]).expect_err(bad);
            assert!(problems[0].starts_with("BERTH_WORKER_QUEUES"), "{bad}: {problems:?}");
        }
    }

    #[test]
    fn runtime_settings_are_checked() {
        let problems = load(&[
            ("BERTH_DOCKER_PREFIX", "Berth-1"),
            ("BERTH_INGRESS_MODE", "external"),
            ("BERTH_DOCKER_HOST", "ftp://x"),
            ("BERTH_INGRESS_LISTEN", "port 80"),
        ])
        .expect_err("bad runtime config");
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("BERTH_INGRESS_DIR:")), "external needs a dir: {problems:?}");
        let cfg = load(&[("BERTH_DOCKER_HOST", "off"), ("BERTH_INGRESS_MODE", "off")]).expect("valid");
        assert!(cfg.docker_host.is_none());
        assert_eq!(cfg.ingress_mode, IngressMode::Off);
        assert_eq!(cfg.docker_prefix, "berth");
        assert_eq!(cfg.ingress_tls_listen, None, "no HTTPS unless asked for");
    }

    #[test]
    fn ingress_tls_listen_is_an_address_of_its_own() {
        let cfg = load(&[("BERTH_INGRESS_TLS_LISTEN", "0.0.0.0:443")]).expect("valid");
        assert_eq!(cfg.ingress_tls_listen, Some("0.0.0.0:443".parse().expect("addr")));
        assert!(cfg.describe().contains(&"BERTH_INGRESS_TLS_LISTEN = 0.0.0.0:443".to_owned()));
        for bad in ["port 443", "127.0.0.1:8081"] {
            let problems = load(&[("BERTH_INGRESS_TLS_LISTEN", bad)]).expect_err(bad);
            assert!(problems[0].starts_with("BERTH_INGRESS_TLS_LISTEN"), "{bad}: {problems:?}");
        }
        let cfg = load(&[("BERTH_DATA_DIR", "/srv/berth")]).expect("valid");
        assert_eq!(cfg.tls_dir(), Path::new("/srv/berth/tls"));
        assert_eq!(cfg.acme_challenge_dir(), Path::new("/srv/berth/acme-challenges"));
    }

    #[test]
    fn public_links_ignore_trailing_slash() {
        let cfg = load(&[("BERTH_PUBLIC_URL", "https://panel.example.com/")]).expect("valid");
        assert_eq!(cfg.public_link("/set-password?token=x"), "https://panel.example.com/set-password?token=x");
        assert!(cfg.cookie_secure());
    }
}
