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
//! | `BERTH_LOG_FORMAT` | `log_format` | `json` (or `pretty`) |
//! | `BERTH_LOG` | `log` | `info` (a tracing filter, e.g. `berth=debug,info`) |
//! | `BERTH_WORKER_QUEUES` | `worker_queues` | `default=8,short=8,long=2`: queues this process works and their concurrency |
//! | `BERTH_WORKER_LEASE_SECONDS` | `worker_lease_seconds` | `30`: a running job's lease (heartbeat every third) |
//! | `BERTH_WORKER_SHUTDOWN_SECONDS` | `worker_shutdown_seconds` | `30`: time running jobs get to finish on shutdown |
//! | `BERTH_JOB_RETENTION_DAYS` | `job_retention_days` | `7`: finished jobs and succeeded flow runs are kept this long |
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
    /// Workers: (queue name, concurrency) pairs this process works.
    pub worker_queues: Vec<(String, usize)>,
    pub worker_lease_seconds: u64,
    pub worker_shutdown_seconds: u64,
    pub job_retention_days: u32,
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
    "worker_queues",
    "worker_lease_seconds",
    "worker_shutdown_seconds",
    "job_retention_days",
];

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
        let redis_prefix = get("redis_prefix").unwrap_or_else(|| "berth:".into());

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
            worker_queues,
            worker_lease_seconds,
            worker_shutdown_seconds,
            job_retention_days,
        })
    }

    /// The database URL in force: the configured one, or SQLite in the data dir.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_owned(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("berth.db").display()),
        }
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
                "worker_queues" => {
                    self.worker_queues.iter().map(|(q, n)| format!("{q}={n}")).collect::<Vec<_>>().join(",")
                }
                "worker_lease_seconds" => self.worker_lease_seconds.to_string(),
                "worker_shutdown_seconds" => self.worker_shutdown_seconds.to_string(),
                "job_retention_days" => self.job_retention_days.to_string(),
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
    fn public_links_ignore_trailing_slash() {
        let cfg = load(&[("BERTH_PUBLIC_URL", "https://panel.example.com/")]).expect("valid");
        assert_eq!(cfg.public_link("/set-password?token=x"), "https://panel.example.com/set-password?token=x");
        assert!(cfg.cookie_secure());
    }
}
