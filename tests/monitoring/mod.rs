//! Site metrics (docs/monitoring.md): collection from real containers on the real Docker
//! engine, rollups and retention on a synthetic clock against real PostgreSQL, the API's tenant
//! scoping, and Debian's Prometheus scraping Berth.

mod alerts;
mod bench;
mod cache;
mod collect;
mod grouping;
mod prometheus;
mod remediation;
mod rollup;
mod rules;

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Client, TestApp};

/// Polls the site's metrics API until `done` holds for the answer, failing after `within`.
pub async fn wait_metrics(
    app: &TestApp,
    client: &Client,
    query: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let _ = app;
    let deadline = Instant::now() + within;
    loop {
        let res = client.get(query).await;
        if res.status == reqwest::StatusCode::OK && done(&res.body) {
            return res.body;
        }
        assert!(Instant::now() < deadline, "metrics never matched within {within:?}: {} {}", res.status, res.text);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The values of one series in a metrics answer.
pub fn values(body: &Value, series: &str) -> Vec<f64> {
    body["series"][series].as_array().map(|a| a.iter().filter_map(|p| p["v"].as_f64()).collect()).unwrap_or_default()
}

/// A site's down alert fired `seconds` after its last passing check, stored as the evaluation
/// stores it (alert, incident, `fired` line), without waiting for real checks to fail.
pub async fn fire_down(app: &TestApp, site_id: uuid::Uuid, customer: &str, seconds: u32) -> uuid::Uuid {
    use berth_core::alerting::{Phase, Severity, Status, Transition};
    let now = chrono::Utc::now();
    let next = Status {
        phase: Phase::Firing,
        severity: Some(Severity::Warning),
        pending_since: Some(now),
        clear_since: None,
        fired_at: Some(now),
        resolved_at: None,
        notified: Some(Severity::Warning),
    };
    let evaluated = berth_core::store::alerts::Evaluated {
        site_id,
        customer_id: customer.parse().expect("uuid"),
        metric: "down",
        rule_id: "01000000-0000-7000-8000-00000000a003".parse().expect("the seeded global down rule"),
        value: Some(f64::from(seconds)),
        previous: None,
        next,
        transition: Some(Transition::Fired(Severity::Warning)),
        detail: format!("no passing uptime check for {seconds} s (warning at 60 s)"),
        now,
    };
    berth_core::store::alerts::record(&app.db, evaluated).await.expect("record").expect("an incident")
}
