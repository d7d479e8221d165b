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

/// What PostgreSQL itself counted of the samples' writes (one `COPY` each) in this test's database
/// (`pg_stat_statements`, preloaded by scripts/test.sh): (statements, rows).
async fn sample_inserts(app: &TestApp) -> (i64, i64) {
    let row = app
        .db
        .query_one(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT) AS calls, CAST(COALESCE(SUM(rows), 0) AS BIGINT) AS n \
             FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND query LIKE 'COPY site_samples %'"
                .to_owned(),
        ))
        .await
        .expect("pg_stat_statements (scripts/test.sh preloads it)")
        .expect("a row");
    (row.try_get("", "calls").expect("calls"), row.try_get("", "n").expect("rows"))
}

/// The stored samples: (cycles, rows).
async fn stored_samples(app: &TestApp) -> (i64, i64) {
    let row = app
        .db
        .query_one(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT COUNT(DISTINCT at_ms) AS cycles, COUNT(*) AS n FROM site_samples".to_owned(),
        ))
        .await
        .expect("count samples")
        .expect("a row");
    (row.try_get("", "cycles").expect("cycles"), row.try_get("", "n").expect("rows"))
}

/// The statement counts and the stored samples at one instant: read until no insert landed
/// between the two readings of the statistics.
async fn consistent(app: &TestApp) -> ((i64, i64), (i64, i64)) {
    loop {
        let before = sample_inserts(app).await;
        let stored = stored_samples(app).await;
        if sample_inserts(app).await == before {
            return (before, stored);
        }
    }
}

/// "One round trip per cycle, never per container", counted by PostgreSQL rather than by
/// Berth: with three running sites, every collection cycle is exactly one statement (a `COPY`) that
/// wrote three rows. (Neither `xact_commit` nor `n_tup_ins` would do: the queue, the scheduler
/// and the reconciler write to the same database all the time, and `n_tup_ins` counts rows,
/// not statements.)
#[tokio::test]
async fn one_collection_cycle_is_one_statement_for_all_its_sites() {
    let app = TestApp::spawn_runtime_with(&[("BERTH_METRICS_INTERVAL_SECONDS", "1")]).await;
    app.db
        .execute(Statement::from_string(
            app.db.get_database_backend(),
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements".to_owned(),
        ))
        .await
        .expect("pg_stat_statements is preloaded by scripts/test.sh");
    let admin = app.admin().await;
    let customer = app.customer(&admin, "batch@example.com", "business").await;
    for n in 1..=3 {
        app.running_site(&admin, &customer, &format!("batch{n}"), &format!("batch{n}.metrics.test")).await;
    }
    // From the first cycle that saw all three sites on.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (stats0, stored0) = loop {
        let (stats, stored) = consistent(&app).await;
        let last = app
            .db
            .query_one(Statement::from_string(
                app.db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM site_samples WHERE at_ms = (SELECT MAX(at_ms) FROM site_samples)".to_owned(),
            ))
            .await
            .expect("query")
            .map(|r| r.try_get::<i64>("", "n").expect("n"))
            .unwrap_or(0);
        if last == 3 && consistent(&app).await == (stats, stored) {
            break (stats, stored);
        }
        assert!(std::time::Instant::now() < deadline, "the three sites were never sampled together");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (stats, stored) = loop {
        let (stats, stored) = consistent(&app).await;
        if stored.0 - stored0.0 >= 4 {
            break (stats, stored);
        }
        assert!(std::time::Instant::now() < deadline, "fewer than 4 cycles in 30 s: {stored0:?} → {stored:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (statements, rows) = (stats.0 - stats0.0, stats.1 - stats0.1);
    let (cycles, samples) = (stored.0 - stored0.0, stored.1 - stored0.1);
    assert_eq!(statements, cycles, "one COPY per cycle ({cycles} cycles, {statements} statements)");
    assert_eq!(rows, samples, "the COPYs wrote exactly the stored samples");
    assert_eq!(samples, 3 * cycles, "each cycle wrote all three sites");
    app.finish().await;
}
