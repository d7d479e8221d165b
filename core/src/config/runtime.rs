//! The container runtime and the ingress: the Docker engine and the names of Berth's objects on
//! it, how nginx routes site traffic, the reconciler's pace, and customer networks. The defaults
//! look at this machine (a Docker socket, an nginx binary) so the embedded default runs sites
//! with no configuration at all.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use super::{declared_default, Mask, Raw, Setting};

/// This area's settings, in the order `config check` prints them.
pub const SETTINGS: &[Setting] = &[
    DOCKER_HOST,
    DOCKER_PREFIX,
    INGRESS_MODE,
    INGRESS_LISTEN,
    INGRESS_TLS_LISTEN,
    INGRESS_DIR,
    NGINX_BINARY,
    RECONCILE_INTERVAL_SECONDS,
    SITE_HEALTH_TIMEOUT_SECONDS,
    SITE_SUBNETS,
    SITE_SUBNET_PREFIX,
    SITE_STOP_TIMEOUT_SECONDS,
    SITE_DRAIN_SECONDS,
    INGRESS_STOP_ON_EXIT,
    RETIRED_VOLUME_KEEP_DAYS,
];

const DOCKER_HOST: Setting = Setting {
    key: "docker_host",
    default: "unix:///var/run/docker.sock when that socket exists, else off",
    mask: Mask::Plain,
    about: "the Docker engine (`unix://`, `tcp://`, `http://`), or `off` for no container runtime",
    value: |c| Some(c.runtime.docker_host.clone().unwrap_or_else(|| "off".into())),
};
const DOCKER_PREFIX: Setting = Setting {
    key: "docker_prefix",
    default: "berth",
    mask: Mask::Plain,
    about: "names Berth's Docker objects and fills their `berth.instance` label",
    value: |c| Some(c.runtime.docker_prefix.clone()),
};
const INGRESS_MODE: Setting = Setting {
    key: "ingress_mode",
    default: "managed when an nginx binary is found, else off",
    mask: Mask::Plain,
    about: "`managed` (Berth runs nginx), `external` (the system nginx) or `off`",
    value: |c| Some(c.runtime.ingress_mode.as_str().into()),
};
const INGRESS_LISTEN: Setting = Setting {
    key: "ingress_listen",
    default: "127.0.0.1:8081",
    mask: Mask::Plain,
    about: "where the ingress serves HTTP",
    value: |c| Some(c.runtime.ingress_listen.to_string()),
};
const INGRESS_TLS_LISTEN: Setting = Setting {
    key: "ingress_tls_listen",
    default: "(none: HTTP only)",
    mask: Mask::Plain,
    about: "where the ingress serves HTTPS for hosts with a stored certificate",
    value: |c| c.runtime.ingress_tls_listen.map(|a| a.to_string()),
};
const INGRESS_DIR: Setting = Setting {
    key: "ingress_dir",
    default: "$BERTH_DATA_DIR/nginx",
    mask: Mask::Plain,
    about: "managed: nginx's prefix; external: a directory the system nginx includes (required)",
    value: |c| Some(c.runtime.ingress_dir.display().to_string()),
};
const NGINX_BINARY: Setting = Setting {
    key: "nginx_binary",
    default: "the first nginx in /usr/sbin, /usr/local/sbin, /usr/bin or PATH",
    mask: Mask::Plain,
    about: "the nginx program",
    value: |c| Some(c.runtime.nginx_binary.display().to_string()),
};
const RECONCILE_INTERVAL_SECONDS: Setting = Setting {
    key: "reconcile_interval_seconds",
    default: "5",
    mask: Mask::Plain,
    about: "how often the reconciler compares the database with Docker",
    value: |c| Some(c.runtime.reconcile_interval_seconds.to_string()),
};
const SITE_HEALTH_TIMEOUT_SECONDS: Setting = Setting {
    key: "site_health_timeout_seconds",
    default: "30",
    mask: Mask::Plain,
    about: "how long a replacement container gets to answer",
    value: |c| Some(c.runtime.site_health_timeout_seconds.to_string()),
};
const SITE_SUBNETS: Setting = Setting {
    key: "site_subnets",
    default: "10.213.0.0/16",
    mask: Mask::Plain,
    about: "the IPv4 pool customer networks get their subnets from",
    value: |c| Some(c.runtime.site_subnets.to_string()),
};
const SITE_SUBNET_PREFIX: Setting = Setting {
    key: "site_subnet_prefix",
    default: "26",
    mask: Mask::Plain,
    about: "each customer network's size (/26 = 62 addresses)",
    value: |c| Some(c.runtime.site_subnet_prefix.to_string()),
};

const SITE_STOP_TIMEOUT_SECONDS: Setting = Setting {
    key: "site_stop_timeout_seconds",
    default: "10",
    mask: Mask::Plain,
    about: "how long a site's process gets after its stop signal before Docker kills it",
    value: |c| Some(c.runtime.site_stop_timeout_seconds.to_string()),
};
const SITE_DRAIN_SECONDS: Setting = Setting {
    key: "site_drain_seconds",
    default: "10",
    mask: Mask::Plain,
    about: "after an update, the most Berth waits for requests in flight to the old container",
    value: |c| Some(c.runtime.site_drain_seconds.to_string()),
};
const INGRESS_STOP_ON_EXIT: Setting = Setting {
    key: "ingress_stop_on_exit",
    default: "false",
    mask: Mask::Plain,
    about: "whether a clean stop of Berth also stops its nginx (sites go offline)",
    value: |c| Some(c.runtime.ingress_stop_on_exit.to_string()),
};
const RETIRED_VOLUME_KEEP_DAYS: Setting = Setting {
    key: "retired_volume_keep_days",
    default: "7",
    mask: Mask::Plain,
    about:
        "how long a data volume a site no longer uses (replaced by a restore) is kept before housekeeping removes it, and a pre-restore backup before retention prunes it",
    value: |c| Some(c.runtime.retired_volume_keep_days.to_string()),
};

/// Where Debian and most distributions install nginx, tried before `PATH`.
const NGINX_PLACES: &[&str] = &["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"];
const DOCKER_SOCKET: &str = "/var/run/docker.sock";

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
pub struct RuntimeConfig {
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
    pub site_subnets: Ipv4Net,
    pub site_subnet_prefix: u8,
    /// How long a site's process gets to exit after its stop signal (on stop, restart, and for
    /// the old container after an update) before Docker kills it.
    pub site_stop_timeout_seconds: u64,
    /// After an update switched nginx to the new container, how long requests still in flight
    /// to the old one may take before it is stopped.
    pub site_drain_seconds: u64,
    /// Whether a clean shutdown of Berth also stops its nginx (managed mode). Off by default:
    /// the sites stay online while Berth is stopped or upgraded; `berth ingress stop` is the
    /// operator's way to take them down.
    pub ingress_stop_on_exit: bool,
    /// How long a data volume a site no longer uses (its data replaced by a restore) is kept
    /// before the housekeeping job removes it; an operator may discard it sooner.
    pub retired_volume_keep_days: u64,
}

impl RuntimeConfig {
    /// `data_dir` holds the managed nginx's files unless `ingress_dir` says otherwise.
    pub(super) fn load(raw: &mut Raw, data_dir: &Path) -> Self {
        let docker_host = match raw.get(&DOCKER_HOST).as_deref() {
            Some("off") => None,
            Some(h) if h.starts_with("unix://") || h.starts_with("tcp://") || h.starts_with("http://") => {
                Some(h.to_owned())
            }
            Some(h) => {
                raw.problem(&DOCKER_HOST, format_args!("`{h}` must start with unix://, tcp:// or http://, or be off"));
                None
            }
            None => Path::new(DOCKER_SOCKET).exists().then(|| format!("unix://{DOCKER_SOCKET}")),
        };
        let docker_prefix = raw.get_or_default(&DOCKER_PREFIX);
        // The prefix becomes part of container, network and volume names: a strict grammar.
        let prefix_ok = docker_prefix.len() <= 24
            && docker_prefix.starts_with(|c: char| c.is_ascii_lowercase())
            && docker_prefix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !prefix_ok {
            raw.problem(&DOCKER_PREFIX, "1 to 24 lowercase letters and digits, starting with a letter");
        }
        let nginx_binary = match raw.get(&NGINX_BINARY) {
            Some(p) => PathBuf::from(p),
            None => find_nginx().unwrap_or_else(|| PathBuf::from("nginx")),
        };
        let ingress_mode = match raw.get(&INGRESS_MODE).as_deref() {
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
                raw.problem(&INGRESS_MODE, format_args!("`{v}` must be managed, external or off"));
                IngressMode::Off
            }
        };
        let ingress_listen = raw.address(&INGRESS_LISTEN, "0.0.0.0:80");
        let ingress_tls_listen = raw.get(&INGRESS_TLS_LISTEN).and_then(|v| match v.parse::<SocketAddr>() {
            Ok(a) if a == ingress_listen => {
                raw.problem(
                    &INGRESS_TLS_LISTEN,
                    format_args!("`{v}` is BERTH_INGRESS_LISTEN too; HTTPS needs its own port"),
                );
                None
            }
            Ok(a) => Some(a),
            Err(_) => {
                raw.problem(&INGRESS_TLS_LISTEN, format_args!("`{v}` is not an address like 0.0.0.0:443"));
                None
            }
        });
        let ingress_dir = match raw.get(&INGRESS_DIR) {
            Some(d) => PathBuf::from(d),
            None => {
                if ingress_mode == IngressMode::External {
                    raw.problem(&INGRESS_DIR, "required in external mode (a directory the system nginx includes)");
                }
                data_dir.join("nginx")
            }
        };
        let reconcile_interval_seconds = raw.number(&RECONCILE_INTERVAL_SECONDS, 1, 3_600);
        let site_health_timeout_seconds = raw.number(&SITE_HEALTH_TIMEOUT_SECONDS, 1, 600);
        let site_subnet_prefix = raw.number(&SITE_SUBNET_PREFIX, 16, 29) as u8;
        let site_subnets = match raw.get(&SITE_SUBNETS) {
            None => declared_default(&SITE_SUBNETS),
            Some(v) => match v.parse::<Ipv4Net>() {
                Ok(net) if net.prefix_len() <= site_subnet_prefix => net.trunc(),
                _ => {
                    raw.problem(
                        &SITE_SUBNETS,
                        format_args!("`{v}` must be an IPv4 network at least as large as /{site_subnet_prefix}"),
                    );
                    declared_default(&SITE_SUBNETS)
                }
            },
        };
        let site_stop_timeout_seconds = raw.number(&SITE_STOP_TIMEOUT_SECONDS, 0, 600);
        let site_drain_seconds = raw.number(&SITE_DRAIN_SECONDS, 0, 600);
        let ingress_stop_on_exit = raw.flag(&INGRESS_STOP_ON_EXIT);
        let retired_volume_keep_days = raw.number(&RETIRED_VOLUME_KEEP_DAYS, 0, 3_650);
        RuntimeConfig {
            retired_volume_keep_days,
            site_stop_timeout_seconds,
            site_drain_seconds,
            ingress_stop_on_exit,
            docker_host,
            docker_prefix,
            ingress_mode,
            ingress_listen,
            ingress_tls_listen,
            ingress_dir,
            nginx_binary,
            reconcile_interval_seconds,
            site_health_timeout_seconds,
            site_subnets,
            site_subnet_prefix,
        }
    }
}

fn find_nginx() -> Option<PathBuf> {
    let fixed = NGINX_PLACES.iter().map(PathBuf::from);
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("nginx")).collect())
        .unwrap_or_default();
    fixed.chain(on_path).find(|p| p.is_file())
}
