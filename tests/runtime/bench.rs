//! Benchmarks (ignored in the normal run; docs/benchmarks.md has the command and the numbers):
//! creation to first 200 through nginx over 50 sites, and one idle reconcile pass over 200.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::Notify;

use berth_core::store::site_state;

use crate::support::TestApp;

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "BENCH {what}: n={} p50={:?} p95={:?} mean={mean:?} max={:?}",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.95),
        samples[samples.len() - 1]
    );
}

/// Creates `n` sites spread over customers of the pro plan (20 sites each); with `measure`,
/// waits for each one's first 200 through nginx before creating the next.
async fn create_sites(app: &TestApp, n: usize, tag: &str, measure: bool) -> Vec<Duration> {
    let admin = app.admin().await;
    let mut customer = String::new();
    let mut samples = Vec::new();
    let mut ids = Vec::new();
    for i in 0..n {
        if i % 20 == 0 {
            customer = app.customer(&admin, &format!("{tag}{i}@bench.test"), "pro").await;
        }
        let domain = format!("{tag}-{i}.bench.test");
        let started = Instant::now();
        let res = admin
            .post("/api/v1/sites", &json!({"customer_id": customer, "name": format!("{tag}-{i}"), "domains": [domain]}))
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
        ids.push(res.str("id"));
        if measure {
            loop {
                if app.through_ingress(&domain).await.0 == 200 {
                    break;
                }
                assert!(started.elapsed() < Duration::from_secs(60), "{domain} never answered");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            samples.push(started.elapsed());
        }
    }
    if !measure {
        for id in &ids {
            app.wait_running(&admin, id).await;
        }
    }
    samples
}

#[tokio::test]
#[ignore = "benchmark: run with --ignored --nocapture (see docs/benchmarks.md)"]
async fn bench_creation_to_first_200() {
    let app = TestApp::spawn_runtime().await;
    let samples = create_sites(&app, 50, "first", true).await;
    report("site creation -> first 200 through nginx", samples);
    app.finish().await;
}

#[tokio::test]
#[ignore = "benchmark: run with --ignored --nocapture (see docs/benchmarks.md)"]
async fn bench_idle_reconcile_pass() {
    // The app's own reconciler only acts when nudged, so the timed passes below do not wait
    // for its advisory lock.
    let app = TestApp::spawn_runtime_with(&[("BERTH_RECONCILE_INTERVAL_SECONDS", "3600")]).await;
    create_sites(&app, 200, "idle", false).await;
    // A second handle on the same database and engine, ingress off (the app's nginx owns the
    // port): the timed pass is the reconcile work plus reading the routes.
    let mut config = app.config.clone();
    config.runtime.ingress_mode = berth_core::config::IngressMode::Off;
    let services = berth_server::startup::Services::connect(config).await.expect("services");
    let rt = services.runtime.clone().expect("runtime");
    // With its event watcher, as the reconciler runs: what lets an idle pass keep its listing.
    // A new watcher takes each container's first health report (every 10 s) as news, so the
    // timing starts after one round of them: the steady state of a running reconciler.
    let watcher = tokio::spawn(berth_workers::reconciler::watch_events(rt.clone(), Arc::new(Notify::new())));
    tokio::time::sleep(Duration::from_secs(12)).await;
    // Warm up once: the first pass records anything still settling.
    berth_workers::reconciler::pass(&services.db, &services.keys, &rt).await;
    // Only passes that did the work count: one that found the app's own reconciler holding
    // the advisory lock returns at once.
    let ok = || rt.metrics.passes.with_label_values(&["ok"]).get();
    let kept_before = rt.metrics.listings_kept.get();
    let mut samples = Vec::new();
    for _ in 0..100 {
        let before = ok();
        let started = Instant::now();
        berth_workers::reconciler::pass(&services.db, &services.keys, &rt).await;
        let took = started.elapsed();
        if ok() > before {
            samples.push(took);
        }
        if samples.len() == 20 {
            break;
        }
    }
    assert_eq!(samples.len(), 20, "the lock was never free");
    let drift = {
        use prometheus::Encoder;
        let mut text = Vec::new();
        prometheus::TextEncoder::new().encode(&services.metrics.gather(), &mut text).expect("encode metrics");
        String::from_utf8(text).expect("utf-8")
    };
    assert!(!drift.contains("berth_reconciler_drift_total"), "an idle pass found drift: {drift}");
    println!(
        "BENCH passes that used a kept listing (no engine call): {}",
        rt.metrics.listings_kept.get() - kept_before
    );
    report("idle reconcile pass, 200 sites", samples);
    // Where a pass goes: its parts timed alone, 20 times each (the rest of a pass is the
    // per-site comparison, which makes no engine call for an unchanged container).
    let mut parts: Vec<(&str, Vec<Duration>)> = Vec::new();
    let mut timed = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        site_state::desired_all(&services.db, &services.keys).await.expect("desired sites");
        timed.push(started.elapsed());
    }
    parts.push(("reading the desired sites (with their opened environments)", timed));
    let mut timed = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        site_state::routes(&services.db).await.expect("routes");
        timed.push(started.elapsed());
    }
    parts.push(("reading the routes (once per idle pass)", timed));
    let mut timed = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        rt.engine.containers(&rt.names.label_filter()).await.expect("container listing");
        timed.push(started.elapsed());
    }
    parts.push(("listing the containers (what an idle pass with a kept listing skips)", timed));
    let sites = site_state::desired_all(&services.db, &services.keys).await.expect("desired sites");
    let mut timed = Vec::new();
    for _ in 0..20 {
        let probes = sites.iter().map(|d| (d.site.id, site_state::Observed::of(&d.site), false)).collect::<Vec<_>>();
        let started = Instant::now();
        let observed = berth_runtime::converge::probe_all(probes).await;
        timed.push(started.elapsed());
        let unreachable = observed.iter().filter(|o| o.health.as_deref() == Some(berth_runtime::converge::UNREACHABLE));
        assert_eq!(unreachable.count(), 0, "every site answers its probe");
    }
    parts.push(("probing the 200 addresses", timed));
    for (what, samples) in parts {
        report(&format!("  of an idle pass: {what}"), samples);
    }
    watcher.abort();
    app.finish().await;
}
