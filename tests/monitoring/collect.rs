//! The collector on real containers: every running site is sampled each cycle, all sites of a
//! cycle in one write, with the plan's memory limit, and the API scopes the series by tenant.

use std::time::Duration;

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};

use super::{values, wait_metrics};
use crate::support::TestApp;

#[tokio::test]
async fn running_sites_are_sampled_and_their_owners_alone_read_the_series() {
    let app =
        TestApp::spawn_runtime_with(&[("BERTH_METRICS_INTERVAL_SECONDS", "1"), ("BERTH_UPTIME_INTERVAL_SECONDS", "1")])
            .await;
    let admin = app.admin().await;
    let mine = app.customer(&admin, "metrics@example.com", "business").await;
    let theirs = app.customer(&admin, "other@example.com", "business").await;
    let a = app.running_site(&admin, &mine, "measured", "measured.metrics.test").await;
    let b = app.running_site(&admin, &theirs, "neighbour", "neighbour.metrics.test").await;
    let (a_id, b_id) = (a["id"].as_str().expect("id").to_owned(), b["id"].as_str().expect("id").to_owned());
    // Traffic, so the network counters move.
    for _ in 0..5 {
        assert_eq!(app.through_ingress("measured.metrics.test").await.0, 200);
    }

    let query = format!("/api/v1/sites/{a_id}/metrics?from={}", urlencode_rfc3339(-600));
    let body = wait_metrics(&app, &admin, &query, Duration::from_secs(60), |b| {
        values(b, "cpu_percent").len() >= 2
            && values(b, "network_rx_bytes_per_second").len() >= 2
            && values(b, "up").len() >= 2
    })
    .await;
    // Uptime checks through the ingress by host name: the site answers, quickly.
    assert!(values(&body, "up").iter().all(|u| *u == 1.0), "{body}");
    assert_eq!(body["uptime_percent"], 100.0);
    assert!(values(&body, "response_ms").iter().all(|ms| *ms < 5000.0), "{body}");
    assert_eq!(body["resolution"], "raw");
    let memory = values(&body, "memory_bytes");
    assert!(memory.iter().all(|m| *m > 0.0), "the container uses memory: {memory:?}");
    // The business plan's memory limit (512 MiB) is what the container runs under.
    assert!(values(&body, "memory_limit_bytes").iter().all(|l| *l == 512.0 * 1024.0 * 1024.0), "{body}");
    assert!(values(&body, "cpu_percent").iter().all(|c| (0.0..=200.0).contains(c)), "{body}");
    assert!(values(&body, "pids").iter().all(|p| *p >= 1.0), "{body}");

    // One cycle, one write: once both sites run, each cycle's samples of both carry the cycle's
    // single timestamp, and no cycle ever wrote a site twice.
    let counts = || async {
        let rows = app
            .db
            .query_all(Statement::from_string(
                app.db.get_database_backend(),
                "SELECT at_ms, COUNT(*) AS n FROM site_samples GROUP BY at_ms ORDER BY at_ms DESC".to_owned(),
            ))
            .await
            .expect("query samples");
        rows.iter().map(|r| r.try_get::<i64>("", "n").expect("n")).collect::<Vec<i64>>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let n = counts().await;
        assert!(n.iter().all(|c| *c <= 2), "a cycle wrote a site twice: {n:?}");
        if n.len() >= 2 && n[..2] == [2, 2] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no two cycles with both sites: {n:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The Prometheus series carry the customer, site and domain.
    let exposition = app.client().get("/metrics").await.text;
    for series in ["berth_site_memory_bytes", "berth_site_up"] {
        let line = format!("{series}{{customer=\"{mine}\",domain=\"measured.metrics.test\",site=\"{a_id}\"}}");
        assert!(exposition.contains(&line), "{line} missing from {exposition}");
    }

    // Tenancy: the owner reads their own site, another customer gets 404 (also for a site of
    // theirs that does not exist), bad input is 422.
    let owner = app.customer_user(&admin, &mine, "owner@metrics.example").await;
    assert_eq!(owner.get(&format!("/api/v1/sites/{a_id}/metrics")).await.status, StatusCode::OK);
    let res = owner.get(&format!("/api/v1/sites/{b_id}/metrics")).await;
    res.assert_problem(StatusCode::NOT_FOUND, "not-found");
    for bad in ["series=cpu,memory_bytes", "step=0", "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "nonsense=1"]
    {
        let res = owner.get(&format!("/api/v1/sites/{a_id}/metrics?{bad}")).await;
        assert!(
            res.status == StatusCode::UNPROCESSABLE_ENTITY || res.status == StatusCode::BAD_REQUEST,
            "{bad}: {} {}",
            res.status,
            res.text
        );
    }
    app.finish().await;
}

/// An RFC 3339 instant `offset_seconds` from now, escaped for a query string.
fn urlencode_rfc3339(offset_seconds: i64) -> String {
    let at = chrono::Utc::now() + chrono::Duration::seconds(offset_seconds);
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).replace(':', "%3A").replace('+', "%2B")
}
