//! Typed configuration, read from `BERTH_*` environment variables over an optional TOML file
//! named by `BERTH_CONFIG` (same keys, lowercase, without the prefix; the environment wins).
//!
//! Settings are grouped by area, one module each:
//!
//! | module | `Config` field | what |
//! |---|---|---|
//! | [`server`] | `server` | database, Redis, HTTP listener and public URL, secret key, first admin, sessions, login limits, logs |
//! | [`dns`] | `dns` | base domain, DNS provider (PowerDNS), the address site records point at |
//! | [`mail`] | `mail` | SMTP server and sender |
//! | [`webhook`] | `webhook` | secrets of the signup webhook |
//! | [`acme`] | `acme` | ordering site certificates over ACME |
//! | [`workers`] | `workers` | job queues, leases, retention |
//! | [`runtime`] | `runtime` | Docker engine, ingress (nginx), customer networks |
//! | [`metrics`] | `metrics` | site metrics collection and retention, access to `/metrics` |
//! | [`backup`] | `backup` | where backups are stored: site repositories (a local directory or S3) and platform backups |
//!
//! Each area declares every one of its settings once, as a [`Setting`] in its `SETTINGS` table:
//! key, default, masking and a one-line description. The list of known keys (the TOML file's
//! unknown-key check), the masking and `berth config check` ([`Config::describe`]) are derived
//! from these tables; docs/configuration.md says the same in prose, one row per setting, and a
//! unit test fails when a declared setting has no row there.
//!
//! - A new setting: its declaration and its parsing in the area's module, its row in
//!   docs/configuration.md.
//! - A new area: one module with a `SETTINGS` table and a `load`, one field on [`Config`] (loaded
//!   in [`Config::load`]) and its table in [`AREAS`].
//!
//! Loading never stops at the first problem: it returns one readable line per bad setting
//! (`BERTH_X: message`), so `berth config check` can list them all.

pub mod acme;
pub mod backup;
pub mod dns;
pub mod mail;
pub mod metrics;
pub mod runtime;
pub mod server;
pub mod webhook;
pub mod workers;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use url::Url;

pub use acme::AcmeConfig;
pub use backup::{BackupConfig, BackupTarget, S3Config};
pub use dns::{DnsConfig, DnsProviderConfig};
pub use mail::MailConfig;
pub use metrics::MetricsConfig;
pub use runtime::{IngressMode, RuntimeConfig};
pub use server::{HttpLimits, LogFormat, ServerConfig};
pub use webhook::WebhookConfig;
pub use workers::WorkersConfig;

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

/// The whole configuration, one field per area (see the module documentation).
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub dns: DnsConfig,
    pub mail: MailConfig,
    pub webhook: WebhookConfig,
    pub acme: AcmeConfig,
    pub workers: WorkersConfig,
    pub runtime: RuntimeConfig,
    pub metrics: MetricsConfig,
    pub backup: BackupConfig,
}

/// One setting, declared once in its area's `SETTINGS` table.
pub struct Setting {
    /// The TOML key; the environment variable is `BERTH_` and the key in capitals ([`env_name`]).
    pub key: &'static str,
    /// The default as people read it. `config check` prints it when the setting has no value
    /// (`$BERTH_DATA_DIR` replaced by the data directory in force). Where it is a plain value
    /// (`720`, `127.0.0.1:8080`), loading falls back to exactly this text.
    pub default: &'static str,
    /// How `config check` shows the value.
    pub mask: Mask,
    /// What the setting does, in one line.
    pub about: &'static str,
    /// The value in force, in clear (masked before it is shown); `None` shows the default.
    pub value: fn(&Config) -> Option<String>,
}

/// How a setting's value is shown by `config check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mask {
    /// As it is.
    Plain,
    /// Not at all: `********`.
    Secret,
    /// A URL whose password part is replaced by `********` (`postgres://u:********@db/berth`).
    UrlPassword,
}

impl Mask {
    fn apply(self, value: &str) -> String {
        match self {
            Self::Plain => value.to_owned(),
            Self::Secret => "********".into(),
            Self::UrlPassword => mask_url(value),
        }
    }
}

/// Every area's settings, in the order `config check` prints them.
pub const AREAS: &[&[Setting]] = &[
    server::SETTINGS,
    dns::SETTINGS,
    mail::SETTINGS,
    webhook::SETTINGS,
    acme::SETTINGS,
    workers::SETTINGS,
    runtime::SETTINGS,
    metrics::SETTINGS,
    backup::SETTINGS,
];

/// Every declared setting, in the order `config check` prints them.
pub fn settings() -> impl Iterator<Item = &'static Setting> {
    AREAS.iter().flat_map(|area| area.iter())
}

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
        let mut raw = Raw::read(&env);
        let server = ServerConfig::load(&mut raw);
        let dns = DnsConfig::load(&mut raw);
        let mail = MailConfig::load(&mut raw);
        let webhook = WebhookConfig::load(&mut raw);
        let acme = AcmeConfig::load(&mut raw);
        let workers = WorkersConfig::load(&mut raw);
        let runtime = RuntimeConfig::load(&mut raw, &server.data_dir);
        let metrics = MetricsConfig::load(&mut raw);
        let backup = BackupConfig::load(&mut raw, &server.data_dir);
        server::check_trusted_proxies(&mut raw, &server.trusted_proxies, runtime.site_subnets);
        if !raw.problems.is_empty() {
            return Err(raw.problems);
        }
        Ok(Config { server, dns, mail, webhook, acme, workers, runtime, metrics, backup })
    }

    /// Where site certificates are stored (`<host>/fullchain.pem`, `privkey.pem`, `issuer`):
    /// written by onboarding, read by the ingress. One definition so both agree.
    pub fn tls_dir(&self) -> PathBuf {
        self.server.data_dir.join("tls")
    }

    /// Where ACME HTTP-01 key authorisations are published, one file per token: written by the
    /// ACME issuer, served by the ingress at `/.well-known/acme-challenge/<token>`.
    pub fn acme_challenge_dir(&self) -> PathBuf {
        self.server.data_dir.join("acme-challenges")
    }

    /// The configuration in force, one `NAME = value` line per setting, secrets masked.
    pub fn describe(&self) -> Vec<String> {
        let data_dir = self.server.data_dir.display().to_string();
        let data_dir = data_dir.trim_end_matches('/');
        settings()
            .map(|setting| {
                let shown = match (setting.value)(self) {
                    Some(value) => setting.mask.apply(&value),
                    None => setting.default.replace("$BERTH_DATA_DIR", data_dir),
                };
                format!("{} = {shown}", env_name(setting.key))
            })
            .collect()
    }
}

/// The settings as read (the environment over the file) and the problems found so far. Each
/// area's `load` takes its settings from here and reports what is wrong with them.
struct Raw {
    values: BTreeMap<&'static str, String>,
    problems: Vec<String>,
}

impl Raw {
    fn read(env: &dyn Fn(&str) -> Option<String>) -> Self {
        let mut raw = Raw { values: BTreeMap::new(), problems: Vec::new() };
        if let Some(path) = env("BERTH_CONFIG").filter(|p| !p.is_empty()) {
            match read_file(Path::new(&path)) {
                Ok(table) => {
                    for (key, value) in table {
                        match settings().find(|s| s.key == key) {
                            Some(setting) => {
                                raw.values.insert(setting.key, value);
                            }
                            None => raw.problems.push(format!("{path}: unknown setting `{key}`")),
                        }
                    }
                }
                Err(e) => raw.problems.push(e),
            }
        }
        for setting in settings() {
            if let Some(value) = env(&env_name(setting.key)) {
                raw.values.insert(setting.key, value);
            }
        }
        raw
    }

    /// The value given, trimmed; `None` when unset or blank.
    fn get(&self, setting: &Setting) -> Option<String> {
        self.values.get(setting.key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// The value given, or the declared default.
    fn get_or_default(&self, setting: &Setting) -> String {
        self.get(setting).unwrap_or_else(|| setting.default.to_owned())
    }

    /// Records one problem line, `BERTH_KEY: message`.
    fn problem(&mut self, setting: &Setting, message: impl fmt::Display) {
        self.problems.push(format!("{}: {message}", env_name(setting.key)));
    }

    /// A whole number from `min` to `max`; the declared default when unset or wrong.
    fn number(&mut self, setting: &Setting, min: u64, max: u64) -> u64 {
        let default = declared_default(setting);
        match self.get(setting) {
            None => default,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    self.problem(setting, format_args!("`{v}` must be a whole number from {min} to {max}"));
                    default
                }
            },
        }
    }

    /// A yes/no switch: `true`/`1`/`yes` or `false`/`0`/`no`; the declared default when unset or
    /// wrong (the problem is recorded, so a typo stops start-up rather than flipping the switch).
    fn flag(&mut self, setting: &Setting) -> bool {
        match self.get_or_default(setting).as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            v => {
                self.problem(setting, format_args!("`{v}` must be true or false"));
                setting.default == "true"
            }
        }
    }

    /// A socket address; the declared default when unset or wrong. `example` completes the
    /// message "is not an address like …".
    fn address(&mut self, setting: &Setting, example: &str) -> SocketAddr {
        let default = declared_default(setting);
        match self.get(setting) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| {
                self.problem(setting, format_args!("`{v}` is not an address like {example}"));
                default
            }),
        }
    }
}

/// A plain declared default, parsed. The declarations are constants, so a default that does not
/// parse is a programming error that the unit tests (which load the defaults) catch.
fn declared_default<T: FromStr>(setting: &Setting) -> T {
    setting.default.parse().unwrap_or_else(|_| panic!("the declared default of `{}` does not parse", setting.key))
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
