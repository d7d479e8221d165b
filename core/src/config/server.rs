//! The server itself: database, Redis, the HTTP listener and its public URL, the secret key, the
//! first administrator, client addresses, sessions, login limits and logs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use url::Url;

use super::{Mask, Raw, Secret, Setting};

/// This area's settings, in the order `config check` prints them.
pub const SETTINGS: &[Setting] = &[
    DATABASE_URL,
    REDIS_URL,
    REDIS_PREFIX,
    LISTEN,
    HTTP_HEADER_TIMEOUT_SECONDS,
    HTTP_BODY_TIMEOUT_SECONDS,
    HTTP_IDLE_TIMEOUT_SECONDS,
    HTTP_MAX_CONNECTIONS,
    PUBLIC_URL,
    SECRET_KEY,
    DATA_DIR,
    BOOTSTRAP_ADMIN_EMAIL,
    BOOTSTRAP_ADMIN_PASSWORD,
    TRUSTED_PROXIES,
    SESSION_TTL_MINUTES,
    LOGIN_LIMIT_PER_IP,
    LOGIN_LIMIT_PER_ACCOUNT,
    LOGIN_LIMIT_WINDOW_SECONDS,
    LOG_FORMAT,
    LOG,
];

const DATABASE_URL: Setting = Setting {
    key: "database_url",
    default: "sqlite://$BERTH_DATA_DIR/berth.db?mode=rwc (embedded default)",
    mask: Mask::UrlPassword,
    about: "PostgreSQL (`postgres://…`) or SQLite (`sqlite:…`) database",
    value: |c| c.server.database_url.as_ref().map(|u| u.expose().to_owned()),
};
const REDIS_URL: Setting = Setting {
    key: "redis_url",
    default: "(none: in-process store)",
    mask: Mask::UrlPassword,
    about: "Redis for sessions, cache and rate limits shared by replicas",
    value: |c| c.server.redis_url.as_ref().map(|u| u.expose().to_owned()),
};
const REDIS_PREFIX: Setting = Setting {
    key: "redis_prefix",
    default: "berth:",
    mask: Mask::Plain,
    about: "prefix of every Redis key Berth writes",
    value: |c| Some(c.server.redis_prefix.clone()),
};
const LISTEN: Setting = Setting {
    key: "listen",
    default: "127.0.0.1:8080",
    mask: Mask::Plain,
    about: "address of the HTTP API and UI",
    value: |c| Some(c.server.listen.to_string()),
};
const HTTP_HEADER_TIMEOUT_SECONDS: Setting = Setting {
    key: "http_header_timeout_seconds",
    default: "10",
    mask: Mask::Plain,
    about: "a connection that has not sent a whole request head in this time is closed",
    value: |c| Some(c.server.http.header_timeout.as_secs().to_string()),
};
const HTTP_BODY_TIMEOUT_SECONDS: Setting = Setting {
    key: "http_body_timeout_seconds",
    default: "30",
    mask: Mask::Plain,
    about: "a request body that has not arrived whole in this time is refused (408)",
    value: |c| Some(c.server.http.body_timeout.as_secs().to_string()),
};
const HTTP_IDLE_TIMEOUT_SECONDS: Setting = Setting {
    key: "http_idle_timeout_seconds",
    default: "75",
    mask: Mask::Plain,
    about: "a kept-alive connection with no request in this time is closed",
    value: |c| Some(c.server.http.idle_timeout.as_secs().to_string()),
};
const HTTP_MAX_CONNECTIONS: Setting = Setting {
    key: "http_max_connections",
    default: "512",
    mask: Mask::Plain,
    about: "open HTTP connections at most; further ones wait in the listen backlog",
    value: |c| Some(c.server.http.max_connections.to_string()),
};
const PUBLIC_URL: Setting = Setting {
    key: "public_url",
    default: "http://<listen>",
    mask: Mask::Plain,
    about: "the URL people reach Berth at; links in e-mails are built from it",
    value: |c| Some(c.server.public_url.to_string()),
};
const SECRET_KEY: Setting = Setting {
    key: "secret_key",
    default: "(generated, kept in $BERTH_DATA_DIR/secret.key)",
    mask: Mask::Secret,
    about: "seals site environments and TOTP secrets; the same on every replica",
    value: |c| c.server.secret_key.as_ref().map(|k| k.expose().to_owned()),
};
const DATA_DIR: Setting = Setting {
    key: "data_dir",
    default: "./data",
    mask: Mask::Plain,
    about: "directory of the embedded database, outbox, certificates and nginx files",
    value: |c| Some(c.server.data_dir.display().to_string()),
};
const BOOTSTRAP_ADMIN_EMAIL: Setting = Setting {
    key: "bootstrap_admin_email",
    default: "admin@localhost",
    mask: Mask::Plain,
    about: "e-mail of the administrator created on first start",
    value: |c| Some(c.server.bootstrap_admin_email.clone()),
};
const BOOTSTRAP_ADMIN_PASSWORD: Setting = Setting {
    key: "bootstrap_admin_password",
    default: "(random, printed once)",
    mask: Mask::Secret,
    about: "password of the administrator created on first start",
    value: |c| c.server.bootstrap_admin_password.as_ref().map(|p| p.expose().to_owned()),
};
const TRUSTED_PROXIES: Setting = Setting {
    key: "trusted_proxies",
    default: "(none)",
    mask: Mask::Plain,
    about: "comma-separated CIDRs whose X-Forwarded-For is believed; must not overlap BERTH_SITE_SUBNETS",
    value: |c| {
        let nets = &c.server.trusted_proxies;
        (!nets.is_empty()).then(|| nets.iter().map(ToString::to_string).collect::<Vec<_>>().join(","))
    },
};
const SESSION_TTL_MINUTES: Setting = Setting {
    key: "session_ttl_minutes",
    default: "720",
    mask: Mask::Plain,
    about: "idle timeout of a browser session",
    value: |c| Some(c.server.session_ttl_minutes.to_string()),
};
const LOGIN_LIMIT_PER_IP: Setting = Setting {
    key: "login_limit_per_ip",
    default: "20",
    mask: Mask::Plain,
    about: "failed sign-ins per client address and window (successful ones do not count)",
    value: |c| Some(c.server.login_limit_per_ip.to_string()),
};
const LOGIN_LIMIT_PER_ACCOUNT: Setting = Setting {
    key: "login_limit_per_account",
    default: "5",
    mask: Mask::Plain,
    about: "failed logins per account and window",
    value: |c| Some(c.server.login_limit_per_account.to_string()),
};
const LOGIN_LIMIT_WINDOW_SECONDS: Setting = Setting {
    key: "login_limit_window_seconds",
    default: "900",
    mask: Mask::Plain,
    about: "the window both login limits count in",
    value: |c| Some(c.server.login_limit_window_seconds.to_string()),
};
const LOG_FORMAT: Setting = Setting {
    key: "log_format",
    default: "json",
    mask: Mask::Plain,
    about: "`json` or `pretty`",
    value: |c| Some(c.server.log_format.as_str().to_owned()),
};
const LOG: Setting = Setting {
    key: "log",
    default: "info",
    mask: Mask::Plain,
    about: "a tracing filter, e.g. `berth=debug,info`",
    value: |c| Some(c.server.log.clone()),
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Pretty => "pretty",
        }
    }
}

/// Limits of the HTTP listener, so slow or silent clients cannot hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Explicit database URL; `None` means the embedded SQLite under `data_dir`.
    pub database_url: Option<Secret>,
    pub redis_url: Option<Secret>,
    pub redis_prefix: String,
    pub listen: SocketAddr,
    pub http: HttpLimits,
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
}

impl ServerConfig {
    pub(super) fn load(raw: &mut Raw) -> Self {
        let data_dir = PathBuf::from(raw.get_or_default(&DATA_DIR));
        let listen = raw.address(&LISTEN, "127.0.0.1:8080");
        let http = HttpLimits {
            header_timeout: Duration::from_secs(raw.number(&HTTP_HEADER_TIMEOUT_SECONDS, 1, 600)),
            body_timeout: Duration::from_secs(raw.number(&HTTP_BODY_TIMEOUT_SECONDS, 1, 3_600)),
            idle_timeout: Duration::from_secs(raw.number(&HTTP_IDLE_TIMEOUT_SECONDS, 1, 3_600)),
            max_connections: raw.number(&HTTP_MAX_CONNECTIONS, 1, 100_000) as usize,
        };
        let public_url = match raw.get(&PUBLIC_URL) {
            None => default_public_url(listen),
            Some(v) => match Url::parse(&v) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
                _ => {
                    raw.problem(&PUBLIC_URL, format_args!("`{v}` is not an http(s) URL"));
                    default_public_url(listen)
                }
            },
        };
        let database_url = raw.get(&DATABASE_URL);
        if let Some(url) = &database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://") || url.starts_with("sqlite:")) {
                raw.problem(&DATABASE_URL, "must start with postgres://, postgresql:// or sqlite:");
            }
        }
        let redis_url = raw.get(&REDIS_URL);
        if let Some(url) = &redis_url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://")) {
                raw.problem(&REDIS_URL, "must start with redis://, rediss:// or unix://");
            }
        }
        let secret_key = raw.get(&SECRET_KEY);
        match &secret_key {
            Some(k) if k.chars().count() < 32 => {
                raw.problem(&SECRET_KEY, "must be at least 32 characters (e.g. `openssl rand -hex 32`)")
            }
            None if database_url.as_deref().is_some_and(|u| !u.starts_with("sqlite:")) => {
                raw.problem(&SECRET_KEY, "required with an external database, so every replica shares one key")
            }
            _ => {}
        }
        let bootstrap_admin_email = raw.get_or_default(&BOOTSTRAP_ADMIN_EMAIL);
        if !bootstrap_admin_email.contains('@') || bootstrap_admin_email.chars().any(char::is_whitespace) {
            raw.problem(&BOOTSTRAP_ADMIN_EMAIL, "must be an e-mail address");
        }
        let bootstrap_admin_password = raw.get(&BOOTSTRAP_ADMIN_PASSWORD);
        if let Some(p) = &bootstrap_admin_password {
            if let Err(msg) = crate::validate::password(p) {
                raw.problem(&BOOTSTRAP_ADMIN_PASSWORD, msg);
            }
        }
        let mut trusted_proxies = Vec::new();
        let proxies = raw.get(&TRUSTED_PROXIES).unwrap_or_default();
        for part in proxies.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match parse_net(part) {
                Some(net) => trusted_proxies.push(net),
                None => raw.problem(&TRUSTED_PROXIES, format_args!("`{part}` is not an IP address or CIDR")),
            }
        }
        let session_ttl_minutes = raw.number(&SESSION_TTL_MINUTES, 5, 60 * 24 * 30) as i64;
        let login_limit_per_ip = raw.number(&LOGIN_LIMIT_PER_IP, 1, 100_000) as u32;
        let login_limit_per_account = raw.number(&LOGIN_LIMIT_PER_ACCOUNT, 1, 1_000) as u32;
        let login_limit_window_seconds = raw.number(&LOGIN_LIMIT_WINDOW_SECONDS, 1, 86_400);
        let log_format = match raw.get(&LOG_FORMAT).as_deref().unwrap_or(LOG_FORMAT.default) {
            "json" => LogFormat::Json,
            "pretty" => LogFormat::Pretty,
            v => {
                raw.problem(&LOG_FORMAT, format_args!("`{v}` must be json or pretty"));
                LogFormat::Json
            }
        };
        ServerConfig {
            database_url: database_url.map(Secret),
            redis_url: redis_url.map(Secret),
            redis_prefix: raw.get_or_default(&REDIS_PREFIX),
            listen,
            http,
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
            log: raw.get_or_default(&LOG),
        }
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
}

fn default_public_url(listen: SocketAddr) -> Url {
    // Parsing a formatted socket address with a scheme cannot fail; fall back defensively anyway.
    Url::parse(&format!("http://{listen}")).unwrap_or_else(|_| Url::parse("http://127.0.0.1:8080").expect("static URL"))
}

/// Refuses trusted proxies that overlap the customer networks' pool: a site container inside a
/// trusted range could send any `X-Forwarded-For` it likes (dodging login limits and writing a
/// false address into the audit log) whenever it can reach the API. One line for all of them.
pub(super) fn check_trusted_proxies(raw: &mut Raw, trusted: &[IpNet], sites: Ipv4Net) {
    let overlapping: Vec<String> = trusted.iter().filter(|net| overlaps(net, sites)).map(ToString::to_string).collect();
    if !overlapping.is_empty() {
        raw.problem(
            &TRUSTED_PROXIES,
            format_args!(
                "{} overlaps BERTH_SITE_SUBNETS ({sites}): site containers could forge X-Forwarded-For; \
                 list only your reverse proxies' own addresses",
                overlapping.join(", ")
            ),
        );
    }
}

/// True when `net` and `sites` share an address (IPv4-mapped IPv6 ranges included).
fn overlaps(net: &IpNet, sites: Ipv4Net) -> bool {
    match net {
        IpNet::V4(v4) => v4.contains(&sites.network()) || sites.contains(&v4.network()),
        IpNet::V6(v6) => {
            let mapped = Ipv6Net::new(sites.network().to_ipv6_mapped(), 96 + sites.prefix_len());
            mapped.is_ok_and(|m| v6.contains(&m.network()) || m.contains(&v6.network()))
        }
    }
}

fn parse_net(value: &str) -> Option<IpNet> {
    value.parse::<IpNet>().ok().or_else(|| value.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}
