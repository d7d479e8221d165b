//! The runtime end to end: real Docker, real nginx (started per test by the test app).
//! Each test ends with `app.finish()`, which fails when it leaves containers or networks.

pub(crate) mod bench;
mod hardening;
mod ingress;
mod isolation;
mod lifecycle;
mod reconcile;
mod restore;
mod tls;
mod validation;
mod volumes;

use crate::support::{runtime::engine, TestApp};
use berth_runtime::engine::Engine;

/// Asserts a site container carries the whole hardening policy, with the limits of `plan`
/// (memory MB, CPU millis, PIDs).
pub async fn assert_hardened(app: &TestApp, site: &serde_json::Value, plan: (i64, i64, i64)) {
    let names = &app.scope().names;
    let site_id: uuid::Uuid = site["id"].as_str().expect("id").parse().expect("uuid");
    let customer: uuid::Uuid = site["customer_id"].as_str().expect("customer").parse().expect("uuid");
    let c = app.inspect(&names.container(site_id)).await;
    let host = c.host_config.clone().expect("host config");
    assert_eq!(host.memory, Some(plan.0 * 1024 * 1024), "memory limit");
    assert_eq!(host.memory_swap, Some(plan.0 * 1024 * 1024), "no swap beyond the limit");
    assert_eq!(host.nano_cpus, Some(plan.1 * 1_000_000), "CPU limit");
    assert_eq!(host.pids_limit, Some(plan.2), "PID limit");
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
    assert!(host.cap_add.unwrap_or_default().is_empty());
    assert_eq!(host.security_opt, Some(vec!["no-new-privileges:true".to_owned()]));
    assert_eq!(host.readonly_rootfs, Some(true));
    assert!(host.tmpfs.unwrap_or_default().contains_key("/tmp"));
    assert_eq!(host.privileged, Some(false));
    assert!(host.port_bindings.unwrap_or_default().is_empty(), "no published ports");
    assert_eq!(host.restart_policy.and_then(|r| r.name).map(|n| n.to_string()), Some("unless-stopped".into()));
    let log = host.log_config.expect("log config");
    assert_eq!(log.typ.as_deref(), Some("json-file"));
    let log = log.config.unwrap_or_default();
    assert_eq!((log["max-size"].as_str(), log["max-file"].as_str()), ("10m", "3"));
    let mounts = c.mounts.clone().unwrap_or_default();
    assert!(
        mounts.iter().any(|m| m.name.as_deref() == Some(names.volume(site_id).as_str())
            && m.destination.as_deref() == Some("/srv/www")),
        "data volume at /srv/www: {mounts:?}"
    );
    let config = c.config.clone().expect("config");
    assert_eq!(config.user.as_deref(), Some("65534:65534"), "non-root user");
    assert!(config.healthcheck.and_then(|h| h.test).is_some_and(|t| !t.is_empty()), "health check");
    let labels = crate::support::runtime::labels(&c);
    assert_eq!(labels["berth.managed"], "true");
    assert_eq!(labels["berth.site"], site_id.to_string());
    assert_eq!(labels["berth.customer"], customer.to_string());
    let networks: Vec<String> = c.network_settings.and_then(|n| n.networks).unwrap_or_default().into_keys().collect();
    assert_eq!(networks, vec![names.network(customer)], "only the customer's network");
}

pub async fn count_volumes(app: &TestApp) -> usize {
    engine().volumes(&app.scope().filter()).await.expect("volumes").len()
}
