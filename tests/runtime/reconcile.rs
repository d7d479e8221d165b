//! The reconciler heals drift (containers, networks, routes), reports what visitors get, and
//! never duplicates, even with two of them racing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use berth_core::config::Config;
use berth_runtime::engine::Engine;
use bollard::models::{ContainerConfig, ContainerCreateBody, HealthConfig, NetworkDisconnectRequest};
use reqwest::StatusCode;
use serde_json::json;

use super::assert_hardened;
use crate::support::runtime::{engine, TestImage};
use crate::support::TestApp;

const BUSINESS: (i64, i64, i64) = (512, 1000, 256);

async fn wait_for(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} did not happen within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn stopped_or_removed_containers_come_back_hardened() {
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "drift@example.com", "business").await;
    let site = app.running_site(&admin, &c, "drifty", "drifty.drift.test").await;
    let id = site["id"].as_str().expect("id").to_owned();
    let name = app.scope().names.container(id.parse().expect("uuid"));
    let e = engine();

    // `docker stop` by hand: started again within a cycle (1 s here).
    e.stop(&name).await.expect("stop by hand");
    wait_for("restart after docker stop", Duration::from_secs(15), async || {
        e.inspect(&name).await.ok().flatten().is_some_and(|d| d.running)
    })
    .await;

    // `docker rm -f` by hand: created again, with the same hardening, serving again.
    let before = e.inspect(&name).await.expect("inspect").expect("exists").id;
    e.remove(&name).await.expect("rm -f by hand");
    wait_for("recreation after docker rm -f", Duration::from_secs(30), async || {
        e.inspect(&name).await.ok().flatten().is_some_and(|d| d.running && d.id != before)
    })
    .await;
    let site = app.wait_running(&admin, &id).await;
    assert_hardened(&app, &site, BUSINESS).await;
    app.wait_ingress("drifty.drift.test", 200).await;
    let metrics = app.client().get("/metrics").await.text;
    assert!(metrics.contains("berth_reconciler_drift_total{kind=\"stopped_container\"}"), "{metrics}");
    assert!(metrics.contains("berth_reconciler_drift_total{kind=\"missing_container\"}"), "{metrics}");
    app.finish().await;
}

/// One series of the app's own metrics; 0 while it is not exposed.
async fn metric(app: &TestApp, series: &str) -> f64 {
    let text = app.client().get("/metrics").await.text;
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0.0)
}

/// Once the event watcher has heard from the engine, a pass that found nothing to do keeps its
/// container listing and the next idle passes use it instead of asking Docker; an event (a
/// container stopped by hand) ends that, and the next pass sees and heals the stop. Without the
/// watcher's forgetting, the kept listing would say the container runs for up to 5 minutes.
#[tokio::test]
async fn idle_passes_reuse_their_listing_until_an_event_comes() {
    const KEPT: &str = "berth_reconciler_kept_listings_total";
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "idle@example.com", "business").await;
    let site = app.running_site(&admin, &c, "idle", "idle.idle.test").await;
    let name = app.scope().names.container(site["id"].as_str().expect("id").parse().expect("uuid"));
    // Passes run every second; the site's health reports reach the watcher every few seconds.
    wait_for("idle passes using a kept listing", Duration::from_secs(60), async || metric(&app, KEPT).await >= 3.0)
        .await;

    let e = engine();
    e.stop(&name).await.expect("stop by hand");
    wait_for("restart after docker stop", Duration::from_secs(15), async || {
        e.inspect(&name).await.ok().flatten().is_some_and(|d| d.running)
    })
    .await;
    let metrics = app.client().get("/metrics").await.text;
    assert!(metrics.contains("berth_reconciler_drift_total{kind=\"stopped_container\"}"), "{metrics}");
    app.wait_ingress("idle.idle.test", 200).await;
    // Idle again: the listing is kept again.
    let kept = metric(&app, KEPT).await;
    wait_for("a kept listing after the heal", Duration::from_secs(60), async || metric(&app, KEPT).await > kept).await;
    app.finish().await;
}

#[tokio::test]
async fn an_orphan_berth_container_is_removed() {
    let app = TestApp::spawn_runtime().await;
    let names = &app.scope().names;
    let ghost = uuid::Uuid::now_v7();
    let mut labels: HashMap<String, String> = names.site_labels(ghost, uuid::Uuid::now_v7());
    labels.insert("berth.note".into(), "orphan made by a test".into());
    let body = ContainerCreateBody {
        image: Some(berth_runtime::images::SITE_STATIC_TAG.into()),
        labels: Some(labels),
        ..Default::default()
    };
    let e = engine();
    e.create(&names.container(ghost), body).await.expect("create orphan");
    e.start(&names.container(ghost)).await.expect("start orphan");
    wait_for("orphan removal", Duration::from_secs(15), async || app.containers().await.is_empty()).await;
    app.finish().await;
}

#[tokio::test]
async fn two_reconcilers_racing_on_twenty_sites_make_twenty_containers() {
    let app = TestApp::spawn_runtime().await;
    // A second Berth on the same database and Docker prefix: its own pools, its own runtime,
    // its own reconciler (ingress off: one nginx per listen address).
    let mut config: Config = app.config.clone();
    config.runtime.ingress_mode = berth_core::config::IngressMode::Off;
    let second = berth_server::startup::Services::connect(config).await.expect("second process");
    let (stop_second, rx) = tokio::sync::watch::channel(false);
    assert!(second.runtime.is_some(), "runtime configured");
    let handle = tokio::spawn(berth_workers::reconciler::run(second.worker_env.clone(), rx));

    let admin = app.admin().await;
    let c = app.customer(&admin, "race@example.com", "pro").await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let res = admin.post("/api/v1/sites", &json!({"customer_id": c, "name": format!("race-{i}")})).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
        ids.push(res.str("id"));
    }
    for id in &ids {
        app.wait_running(&admin, id).await;
    }
    // A few more cycles of both: still exactly one container per site.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let containers = app.containers().await;
    assert_eq!(containers.len(), 20, "{:?}", containers.iter().map(|c| &c.name).collect::<Vec<_>>());
    let _ = stop_second.send(true);
    let _ = handle.await;
    app.finish().await;
}

/// The networks a container is attached to, by name.
async fn networks_of(app: &TestApp, name: &str) -> Vec<String> {
    let c = app.inspect(name).await;
    let mut nets: Vec<String> = c.network_settings.and_then(|n| n.networks).unwrap_or_default().into_keys().collect();
    nets.sort();
    nets
}

/// The container's address on its customer network, as nginx must be told it.
async fn address_of(app: &TestApp, name: &str, network: &str) -> Option<String> {
    let c = app.inspect(name).await;
    let ip = c.network_settings?.networks?.get(network)?.ip_address.clone().filter(|ip| !ip.is_empty())?;
    Some(format!("{ip}:8080"))
}

/// Issue 9, item 4: a site container taken off its customer network by hand is put back on it
/// (and routed to its address on it again); one attached to another network is taken off it.
#[tokio::test]
async fn network_drift_is_healed_and_routed_again() {
    const HOST: &str = "netdrift.drift.test";
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "netdrift@example.com", "business").await;
    let site = app.running_site(&admin, &c, "netdrift", HOST).await;
    let id = site["id"].as_str().expect("id").to_owned();
    let name = app.scope().names.container(id.parse().expect("uuid"));
    let network = app.scope().names.network(c.parse().expect("uuid"));
    app.wait_ingress(HOST, 200).await;
    let docker = engine();

    // `docker network disconnect`: the container is attached again, and nginx routes to it.
    let off = NetworkDisconnectRequest { container: name.clone(), force: Some(true) };
    docker.client().disconnect_network(&network, off).await.expect("disconnect by hand");
    wait_for("reattachment to the customer network", Duration::from_secs(15), async || {
        networks_of(&app, &name).await == vec![network.clone()]
    })
    .await;
    app.wait_ingress(HOST, 200).await;
    let actual = address_of(&app, &name, &network).await.expect("an address on the customer network");
    let site = app.wait_site(&admin, &id, Duration::from_secs(15), |s| s["address"] == actual.as_str()).await;
    assert_eq!(site["status"], "running", "{site}");
    let sites = std::fs::read_to_string(app.scope_ingress_sites()).expect("sites.conf");
    assert!(sites.contains(&format!("server {actual};")), "nginx does not route to {actual}: {sites}");
    // The site is still reachable by its name from the customer's other containers.
    let alias =
        app.inspect(&name).await.network_settings.and_then(|n| n.networks).and_then(|n| n.get(&network).cloned());
    let aliases = alias.and_then(|a| a.aliases).unwrap_or_default();
    assert!(aliases.contains(&"netdrift".to_owned()), "the site-name alias is gone: {aliases:?}");

    // `docker network connect bridge`: another network on a site container breaks its isolation.
    let on = bollard::models::NetworkConnectRequest { container: name.clone(), endpoint_config: None };
    docker.client().connect_network("bridge", on).await.expect("connect by hand");
    wait_for("detachment from the foreign network", Duration::from_secs(15), async || {
        networks_of(&app, &name).await == vec![network.clone()]
    })
    .await;
    app.wait_ingress(HOST, 200).await;
    let metrics = app.client().get("/metrics").await.text;
    assert!(metrics.contains("berth_reconciler_drift_total{kind=\"detached_network\"}"), "{metrics}");
    assert!(metrics.contains("berth_reconciler_drift_total{kind=\"foreign_network\"}"), "{metrics}");
    app.finish().await;
}

/// Issue 9, item 4: the status says what visitors get. A site whose container is running and
/// healthy by its own check, but which nginx cannot connect to, is not reported healthy.
#[tokio::test]
async fn a_site_nginx_cannot_reach_is_not_reported_healthy() {
    const HOST: &str = "astray.drift.test";
    let app = TestApp::spawn_runtime().await;
    // Exposes 8080 (so that is where nginx is sent) but listens on 8081, where its own health
    // check looks.
    let astray = TestImage::derived(
        app.scope(),
        "wrong-port",
        ContainerConfig {
            entrypoint: Some(
                [
                    "/bin/busybox",
                    "sh",
                    "-c",
                    "echo ok >/srv/www/index.html; exec /bin/busybox httpd -f -p 8081 -h /srv/www",
                ]
                .map(String::from)
                .to_vec(),
            ),
            healthcheck: Some(HealthConfig {
                test: Some(
                    ["CMD", "/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8081/"]
                        .map(String::from)
                        .to_vec(),
                ),
                interval: Some(1_000_000_000),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "astray@example.com", "business").await;
    let res = admin
        .post(
            "/api/v1/sites",
            &json!({"customer_id": c, "name": "astray", "domains": [HOST], "image": astray.reference}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let id = res.str("id");
    let name = app.scope().names.container(id.parse().expect("uuid"));
    app.wait_running(&admin, &id).await;
    // Docker calls it healthy ...
    wait_for("Docker's health check to pass", Duration::from_secs(30), async || {
        app.inspect(&name).await.state.and_then(|s| s.health).and_then(|h| h.status).map(|s| s.to_string())
            == Some("healthy".into())
    })
    .await;
    // ... visitors get an error ...
    let (status, _) = app.through_ingress(HOST).await;
    assert_eq!(status, 502);
    // ... and Berth says so, rather than `running · healthy`.
    let site = app
        .wait_site(&admin, &id, Duration::from_secs(15), |s| s["status"] == "running" && s["health"] != "starting")
        .await;
    assert_eq!(site["health"], "unreachable", "{site}");
    let reason = site["status_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("cannot connect") && reason.contains(":8080"), "{site}");
    app.finish().await;
}

/// A site created or changed in the admin console starts as soon as one made through the API:
/// both go through the same site operations, which wake the reconciler. The timed pass is an
/// hour away here (only the start-up pass runs), so a site that waited for the timer would
/// still be pending when the test gives up.
#[tokio::test]
async fn a_site_made_in_the_console_starts_without_waiting_for_the_timer() {
    let app = TestApp::spawn_runtime_with(&[("BERTH_RECONCILE_INTERVAL_SECONDS", "3600")]).await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "console@example.com", "business").await;

    // Through the console's form, with the session's CSRF token, as a browser posts it — first,
    // while this test has no container yet: nothing else (no Docker event of a running
    // container, no timed pass) can wake the reconciler, so the site starts only if the
    // console's create woke it.
    let csrf = admin.csrf.clone().expect("csrf token");
    let form =
        format!("csrf_token={csrf}&customer_id={c}&name=by-console&image=&domains=console.wake.test&env=GREETING%3Dhi");
    let started = Instant::now();
    let res = admin
        .raw(reqwest::Method::POST, "/admin/sites/new", Some("application/x-www-form-urlencoded"), form.into_bytes())
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text);
    let location = res.headers.get("location").and_then(|l| l.to_str().ok()).expect("redirect").to_owned();
    let id = location.rsplit('/').next().expect("site id").to_owned();
    let site = app.wait_site(&admin, &id, Duration::from_secs(30), |s| s["status"] == "running").await;
    let by_console = started.elapsed();
    app.wait_ingress("console.wake.test", 200).await;

    // Through the API, for comparison.
    let started = Instant::now();
    let res =
        admin.post("/api/v1/sites", &json!({"customer_id": c, "name": "by-api", "domains": ["api.wake.test"]})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    app.wait_site(&admin, &res.str("id"), Duration::from_secs(60), |s| s["status"] == "running").await;
    let by_api = started.elapsed();
    eprintln!("created → running: console {by_console:?}, API {by_api:?}");

    // An edit in the console replaces the container just as promptly. (Running containers emit
    // Docker events now, so this part shows the behaviour, not the wake-up on its own.)
    let old = site["container_id"].as_str().expect("container").to_owned();
    let form = format!(
        "csrf_token={csrf}&image=berth%2Fsite-static%3Alatest&domains=console.wake.test&env_add=GREETING%3Dhello"
    );
    let res = admin
        .raw(
            reqwest::Method::POST,
            &format!("/admin/sites/{id}/edit"),
            Some("application/x-www-form-urlencoded"),
            form.into_bytes(),
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text);
    app.wait_site(&admin, &id, Duration::from_secs(60), |s| {
        s["status"] == "running" && s["container_id"].as_str().is_some_and(|c| c != old)
    })
    .await;
    app.finish().await;
}
