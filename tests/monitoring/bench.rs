//! The first alert notification's latency (issue 10's benchmark), end to end at production
//! intervals: a site starts a busy loop, and the time until the alert e-mail arrives at the SMTP
//! sink is printed. Ignored in the normal run (it takes a minute or more and measures, it does
//! not judge: there is no timed assertion); docs/benchmarks.md has the command and the figures.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use super::rules::{exec_detached, set_rule};
use crate::support::services::SmtpSink;
use crate::support::TestApp;

/// The CPU rule's `for` during the measurement.
const FOR_SECONDS: u64 = 30;

#[tokio::test]
#[ignore = "benchmark: run with --ignored --nocapture (docs/benchmarks.md)"]
async fn first_alert_notification_latency() {
    let sink = SmtpSink::start().await;
    // The default intervals: a sample every 15 s, an evaluation every 15 s.
    let app = TestApp::spawn_runtime_with(&[("BERTH_SMTP_URL", &sink.url)]).await;
    assert_eq!((app.config.metrics.interval_seconds, app.config.metrics.alerts_interval_seconds), (15, 15));
    let admin = app.admin().await;
    let customer = app.customer(&admin, "latency@example.com", "business").await;
    let res =
        admin.post("/api/v1/notification-channels", &json!({"kind": "email", "target": "ops@hosting.example"})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let site = app.running_site(&admin, &customer, "spin", "spin.latency.test").await;
    let id = site["id"].as_str().expect("id").to_owned();
    set_rule(&admin, "cpu", json!({"warning": 15, "critical": 100000, "for_seconds": FOR_SECONDS})).await;
    // The collector has seen the idle site twice (so the next sample has a CPU percentage).
    let deadline = Instant::now() + Duration::from_secs(90);
    while super::values(&admin.get(&format!("/api/v1/sites/{id}/metrics?series=cpu_percent")).await.body, "cpu_percent")
        .is_empty()
    {
        assert!(Instant::now() < deadline, "no CPU sample within 90 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(sink.messages().is_empty(), "idle: nothing was sent");

    let name = app.scope().names.container(id.parse().expect("uuid"));
    let breach = Instant::now();
    exec_detached(&name, &["/bin/busybox", "sh", "-c", "while [ ! -e /tmp/stop-spinning ]; do :; done"]).await;
    let deadline = breach + Duration::from_secs(180);
    let latency = loop {
        if !sink.messages().is_empty() {
            break breach.elapsed();
        }
        assert!(Instant::now() < deadline, "no alert e-mail within 180 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!(
        "first alert notification: {:.1} s from the breach's start to the e-mail at the SMTP sink \
         (for = {FOR_SECONDS} s, samples and evaluations every 15 s; target for + 30 s = {} s)",
        latency.as_secs_f64(),
        FOR_SECONDS + 30
    );
    let (code, out) = app.exec(&name, &["/bin/busybox", "touch", "/tmp/stop-spinning"]).await;
    assert_eq!(code, 0, "{out}");
    app.discard_jobs().await;
    app.finish().await;
}
