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
