//! What a site container is, and the one function that turns it into a hardened Docker
//! container definition. Every path that creates a site container (create, update, recreate by
//! the reconciler, restore) goes through [`hardened`], so the policy cannot differ between them.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, HostConfigLogConfig, Mount, MountType, NetworkingConfig,
    RestartPolicy, RestartPolicyNameEnum,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::names::{Names, LABEL_PORT, LABEL_SPEC};

/// Where a site keeps its data when neither the image nor the site says otherwise.
pub const DEFAULT_DATA_PATH: &str = "/data";
/// The port a site listens on when its image exposes none.
pub const DEFAULT_PORT: u16 = 8080;
/// Size of the writable /tmp of a site (the root filesystem is read-only).
pub const TMPFS_OPTIONS: &str = "rw,noexec,nosuid,nodev,size=64m";
/// json-file log rotation: 10 MB x 3 files.
pub const LOG_MAX_SIZE: &str = "10m";
pub const LOG_MAX_FILES: &str = "3";

/// The revision of [`hardened`]'s policy. It is part of every [`SiteSpec::hash`], so raising it
/// (when the policy changes in a way running containers should get too) replaces every site's
/// container at the next pass, each health-checked and switched without dropping a request.
/// Revision 2: a tiny init as PID 1 (signals reach the site's process; stops take no 10 s).
/// Revision 3: never root unless an admin allows it ([`SITE_USER`] for images without a user).
pub const POLICY_REVISION: u32 = 3;
/// The user a site runs as when its image names none, or names root, and no admin allowed
/// root: `nobody`'s ids, which own nothing in a site image unless the image gives it files.
pub const SITE_USER: &str = "65534:65534";

/// The owner's and the plan's part of a site container: what, when changed, calls for a new
/// container. Its hash (with the [`POLICY_REVISION`]) is stored on the container as a label.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SiteSpec {
    pub site_id: Uuid,
    pub customer_id: Uuid,
    /// The validated site name (`[a-z0-9-]`), given to the container as BERTH_SITE_NAME.
    pub name: String,
    pub image: String,
    pub env: BTreeMap<String, String>,
    pub memory_mb: i64,
    pub cpu_millis: i64,
    pub pids: i64,
    /// An admin allowed the image's root user (see [`run_as`]).
    pub allow_root: bool,
    /// The data volume, when not the default one (a restore switched the site onto a fresh
    /// volume). Left out of the hash when `None`, so sites that never switched keep the hash
    /// (and the container) they had before this field existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_volume: Option<String>,
}

impl SiteSpec {
    /// The name of the volume the container mounts.
    pub fn volume(&self, names: &Names) -> String {
        self.data_volume.clone().unwrap_or_else(|| names.volume(self.site_id))
    }

    /// A stable hash of the specification and the policy revision (hex SHA-256 of their
    /// canonical JSON).
    pub fn hash(&self) -> String {
        #[derive(serde::Serialize)]
        struct Hashed<'a> {
            #[serde(flatten)]
            spec: &'a SiteSpec,
            policy: u32,
        }
        let json = serde_json::to_vec(&Hashed { spec: self, policy: POLICY_REVISION }).unwrap_or_default();
        hex::encode(Sha256::digest(&json))
    }
}

/// What the image says about itself, read by inspecting it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFacts {
    /// The image's user; empty means root.
    pub user: Option<String>,
    /// The first declared VOLUME: where the site's data volume is mounted.
    pub data_path: Option<String>,
    /// The first exposed TCP port.
    pub port: Option<u16>,
}

impl ImageFacts {
    pub fn data_path(&self) -> &str {
        self.data_path.as_deref().unwrap_or(DEFAULT_DATA_PATH)
    }
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(DEFAULT_PORT)
    }
}

/// Whether an image's `USER` (`name`, `uid`, `name:group`, `uid:gid`) is root. A name other
/// than `root` is taken as not root: mapping it to uid 0 in the image's /etc/passwd is not
/// something an image does by accident.
fn is_root(user: &str) -> bool {
    matches!(user.split(':').next().map(str::trim), None | Some("" | "root" | "0"))
}

/// The user a site's container runs as: the image's own when it is not root; root (the image's
/// user, or none) only when an admin allowed it for the site; [`SITE_USER`] otherwise.
pub fn run_as(spec: &SiteSpec, image: &ImageFacts) -> Option<String> {
    let own = image.user.clone().filter(|u| !u.trim().is_empty());
    match own {
        Some(u) if !is_root(&u) => Some(u),
        own if spec.allow_root => own,
        _ => Some(SITE_USER.to_owned()),
    }
}

/// The hardened container definition of a site: plan limits, every capability dropped,
/// no-new-privileges, a read-only root with a tmpfs /tmp, a non-root user ([`run_as`]), a restart
/// policy, no published ports, rotated logs, the site's own data volume, labels, and only the
/// customer's network. The image's health check and stop signal are kept. Docker's tiny init
/// (tini) runs as PID 1: it hands the stop signal on to the site's process, which as PID 1
/// would ignore a SIGTERM it installed no handler for (busybox httpd does not), and reaps
/// zombies.
pub fn hardened(names: &Names, spec: &SiteSpec, image: &ImageFacts) -> ContainerCreateBody {
    let network = names.network(spec.customer_id);
    let mut labels = names.site_labels(spec.site_id, spec.customer_id);
    labels.insert(LABEL_SPEC.to_owned(), spec.hash());
    labels.insert(LABEL_PORT.to_owned(), image.port().to_string());
    let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.push(format!("BERTH_SITE_NAME={}", spec.name));
    let memory = spec.memory_mb.max(16) * 1024 * 1024;
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        env: Some(env),
        user: run_as(spec, image),
        labels: Some(labels),
        host_config: Some(HostConfig {
            memory: Some(memory),
            // Equal to memory: no swap on top of the plan's memory.
            memory_swap: Some(memory),
            nano_cpus: Some(spec.cpu_millis.max(10) * 1_000_000),
            pids_limit: Some(spec.pids.max(16)),
            init: Some(true),
            cap_drop: Some(vec!["ALL".to_owned()]),
            security_opt: Some(vec!["no-new-privileges:true".to_owned()]),
            readonly_rootfs: Some(true),
            tmpfs: Some(HashMap::from([("/tmp".to_owned(), TMPFS_OPTIONS.to_owned())])),
            privileged: Some(false),
            publish_all_ports: Some(false),
            port_bindings: None,
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".to_owned()),
                config: Some(HashMap::from([
                    ("max-size".to_owned(), LOG_MAX_SIZE.to_owned()),
                    ("max-file".to_owned(), LOG_MAX_FILES.to_owned()),
                ])),
            }),
            mounts: Some(vec![Mount {
                typ: Some(MountType::VOLUME),
                source: Some(spec.volume(names)),
                target: Some(image.data_path().to_owned()),
                read_only: Some(false),
                ..Default::default()
            }]),
            network_mode: Some(network.clone()),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network,
                // Sibling sites of the same customer reach each other by site name.
                EndpointSettings { aliases: Some(vec![spec.name.clone()]), ..Default::default() },
            )])),
        }),
        ..Default::default()
    }
}

/// A restore drill's scratch container: the site's own hardened definition ([`hardened`]: its
/// image, user, plan limits, dropped capabilities, no-new-privileges, read-only root) on
/// `volume`, a copy of its data, changed only where a scratch object must differ: **no network
/// at all** (never the customer's network, so neither nginx nor the customer's other sites can
/// reach it, and it reaches nothing), never restarted, and the drill's `labels` instead of the
/// site's (no `berth.site`, so nothing that works on sites takes it for the site's container).
pub fn scratch(
    names: &Names,
    spec: &SiteSpec,
    image: &ImageFacts,
    volume: &str,
    labels: HashMap<String, String>,
) -> ContainerCreateBody {
    let on_copy = SiteSpec { data_volume: Some(volume.to_owned()), ..spec.clone() };
    let mut body = hardened(names, &on_copy, image);
    body.labels = Some(labels);
    body.networking_config = None;
    if let Some(host) = body.host_config.as_mut() {
        host.network_mode = Some("none".to_owned());
        host.restart_policy = Some(RestartPolicy { name: Some(RestartPolicyNameEnum::NO), maximum_retry_count: None });
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SiteSpec {
        SiteSpec {
            site_id: Uuid::now_v7(),
            customer_id: Uuid::now_v7(),
            name: "shop".into(),
            image: "berth/site-static:latest".into(),
            env: BTreeMap::from([("A".into(), "1".into())]),
            memory_mb: 256,
            cpu_millis: 500,
            pids: 128,
            allow_root: false,
            data_volume: None,
        }
    }

    #[test]
    fn the_policy_is_all_there() {
        let s = spec();
        let body = hardened(&Names::new("berth"), &s, &ImageFacts::default());
        let host = body.host_config.expect("host config");
        assert_eq!(host.memory, Some(256 * 1024 * 1024));
        assert_eq!(host.memory_swap, host.memory);
        assert_eq!(host.nano_cpus, Some(500_000_000));
        assert_eq!(host.pids_limit, Some(128));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.init, Some(true), "an init that passes signals on");
        assert!(host.port_bindings.is_none());
        assert_eq!(host.network_mode, Some(Names::new("berth").network(s.customer_id)));
        let labels = body.labels.expect("labels");
        assert_eq!(labels["berth.managed"], "true");
        assert_eq!(labels["berth.site"], s.site_id.to_string());
        assert_eq!(labels["berth.spec"], s.hash());
    }

    #[test]
    fn a_drill_scratch_container_is_hardened_like_the_site_but_on_no_network() {
        let names = Names::new("berth");
        let s = spec();
        let drill = Uuid::now_v7();
        let labels = names.drill_labels(drill, s.customer_id, 42);
        let body = scratch(&names, &s, &ImageFacts::default(), &names.drill(drill), labels);
        let site = hardened(&names, &s, &ImageFacts::default());
        assert_eq!(body.image, site.image);
        assert_eq!(body.user, site.user);
        let (host, site_host) = (body.host_config.expect("host config"), site.host_config.expect("host config"));
        for (a, b) in [(host.memory, site_host.memory), (host.pids_limit, site_host.pids_limit)] {
            assert_eq!(a, b, "the plan's limits");
        }
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(host.security_opt, site_host.security_opt);
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.network_mode.as_deref(), Some("none"), "never the customer's network");
        assert!(body.networking_config.is_none());
        assert!(host.port_bindings.is_none());
        let mount = host.mounts.and_then(|m| m.into_iter().next()).and_then(|m| m.source);
        assert_eq!(mount, Some(names.drill(drill)), "the copy, never the site's volume");
        let labels = body.labels.expect("labels");
        assert!(!labels.contains_key("berth.site"), "not taken for the site's container");
        assert_eq!(labels["berth.drill"], drill.to_string());
        assert_eq!(labels["berth.instance"], "berth");
    }

    #[test]
    fn sites_run_as_root_only_when_an_admin_allows_it() {
        let facts = |user: Option<&str>| ImageFacts { user: user.map(str::to_owned), ..Default::default() };
        let mut s = spec();
        for root in [None, Some(""), Some("root"), Some("0"), Some("0:0"), Some("root:root")] {
            assert_eq!(run_as(&s, &facts(root)).as_deref(), Some(SITE_USER), "{root:?}");
        }
        assert_eq!(run_as(&s, &facts(Some("www-data"))).as_deref(), Some("www-data"));
        assert_eq!(run_as(&s, &facts(Some("1000:1000"))).as_deref(), Some("1000:1000"));
        s.allow_root = true;
        assert_eq!(run_as(&s, &facts(None)), None, "the image's own (root) user");
        assert_eq!(run_as(&s, &facts(Some("root"))).as_deref(), Some("root"));
        assert_eq!(run_as(&s, &facts(Some("1000"))).as_deref(), Some("1000"));
        let body = hardened(&Names::new("berth"), &spec(), &facts(None));
        assert_eq!(body.user.as_deref(), Some(SITE_USER));
    }

    #[test]
    fn the_hash_follows_the_specification() {
        let a = spec();
        let mut b = a.clone();
        assert_eq!(a.hash(), b.hash());
        b.image = "other:1".into();
        assert_ne!(a.hash(), b.hash());
        let mut c = a.clone();
        c.allow_root = true;
        assert_ne!(a.hash(), c.hash(), "allowing root replaces the container");
        let mut d = a.clone();
        d.data_volume = Some("berth-data-x-g1".into());
        assert_ne!(a.hash(), d.hash(), "a switch of the data volume replaces the container");
    }

    #[test]
    fn sites_on_their_default_volume_keep_their_hash() {
        // The hash of a spec without `data_volume` is the hash from before the field existed:
        // an upgrade replaces no container.
        let s = spec();
        let json = serde_json::to_value(&s).expect("json");
        assert!(json.get("data_volume").is_none(), "{json}");
        let names = Names::new("berth");
        let mount = |spec: &SiteSpec| {
            let body = hardened(&names, spec, &ImageFacts::default());
            body.host_config.and_then(|h| h.mounts).and_then(|m| m.into_iter().next()).and_then(|m| m.source)
        };
        assert_eq!(mount(&s), Some(names.volume(s.site_id)));
        let mut moved = s.clone();
        moved.data_volume = Some(names.fresh_volume(s.site_id, "g1"));
        assert_eq!(mount(&moved), Some(names.fresh_volume(s.site_id, "g1")));
    }
}
