//! Rollups and retention on a synthetic clock, against real PostgreSQL: 15-second samples become
//! exact 1-minute and 1-hour buckets, re-running changes nothing, each table keeps exactly its
//! retention, and the API switches resolution with the span.

use berth_core::config::Config;
use berth_core::store::metrics::{self, Sample};
use chrono::{DateTime, Duration, TimeZone, Utc};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use uuid::Uuid;

use super::values;
use crate::support::TestApp;

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 10, h, m, s).single().expect("valid time")
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let row = app
        .db
        .query_one(Statement::from_string(app.db.get_database_backend(), sql.to_owned()))
        .await
        .expect("query")
        .expect("a row");
    row.try_get("", "n").expect("n")
}

#[tokio::test]
async fn samples_roll_up_exactly_and_age_out_by_table() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "rollup@example.com", "business").await;
    let res = admin.post("/api/v1/sites", &json!({"customer_id": customer, "name": "charted"})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let site: Uuid = res.str("id").parse().expect("uuid");
    let customer: Uuid = customer.parse().expect("uuid");

    // 10:00:00 to 10:02:45, every 15 s: CPU 10 % then 30 % alternating, memory rising by 1 MiB,
    // 1000 bytes received per sample.
    let samples: Vec<Sample> = (0..12)
        .map(|i| Sample {
            site_id: site,
            customer_id: customer,
            at: at(10, 0, 0) + Duration::seconds(15 * i),
            cpu_usec: 1_000_000 * i,
            cpu_percent: Some(if i % 2 == 0 { 10.0 } else { 30.0 }),
            memory_bytes: (100 + i) << 20,
            memory_limit_bytes: 512 << 20,
            net_rx_bytes: 1000 * i,
            net_tx_bytes: 0,
            block_read_bytes: 0,
            block_write_bytes: 0,
            pids: 2 + i % 3,
            restarts: 0,
        })
        .collect();
    metrics::ensure_partitions(&app.db, at(10, 0, 0)).await.expect("partitions");
    assert_eq!(metrics::insert_samples(&app.db, &samples).await.expect("insert"), 12);

    // At 10:03:30 the three complete minutes are rolled up; twice is the same as once.
    for _ in 0..2 {
        metrics::rollup(&app.db, at(10, 3, 30)).await.expect("rollup");
    }
    let minute = app
        .db
        .query_all(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT bucket_ms, samples, cpu_percent_avg, cpu_percent_max, memory_bytes_max, net_rx_bytes, pids_max \
             FROM site_metrics_1m ORDER BY bucket_ms"
                .to_owned(),
        ))
        .await
        .expect("minutes");
    assert_eq!(minute.len(), 3);
    for (i, row) in minute.iter().enumerate() {
        let i = i as i64;
        assert_eq!(
            row.try_get::<i64>("", "bucket_ms").expect("bucket"),
            (at(10, 0, 0) + Duration::minutes(i)).timestamp_millis()
        );
        assert_eq!(row.try_get::<i64>("", "samples").expect("samples"), 4);
        assert_eq!(row.try_get::<f64>("", "cpu_percent_avg").expect("avg"), 20.0);
        assert_eq!(row.try_get::<f64>("", "cpu_percent_max").expect("max"), 30.0);
        assert_eq!(row.try_get::<i64>("", "memory_bytes_max").expect("mem"), (100 + 4 * i + 3) << 20);
        // Four samples 1000 bytes apart: 3000 bytes received within the minute.
        assert_eq!(row.try_get::<i64>("", "net_rx_bytes").expect("rx"), 3000);
        assert_eq!(row.try_get::<i64>("", "pids_max").expect("pids"), 4);
    }

    // After the hour: one 1-hour bucket of all twelve samples.
    metrics::rollup(&app.db, at(11, 0, 30)).await.expect("rollup");
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM site_metrics_1h").await, 1);
    assert_eq!(count(&app, "SELECT samples AS n FROM site_metrics_1h").await, 12);
    assert_eq!(count(&app, "SELECT net_rx_bytes AS n FROM site_metrics_1h").await, 9000);

    // The API: three hours around the samples is raw; a week is 1-minute buckets.
    let q = |from: DateTime<Utc>, to: DateTime<Utc>, extra: &str| {
        let f = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).replace(':', "%3A");
        format!("/api/v1/sites/{site}/metrics?from={}&to={}{extra}", f(from), f(to))
    };
    let raw = admin.get(&q(at(9, 0, 0), at(12, 0, 0), "&series=cpu_percent,network_rx_bytes_per_second")).await;
    assert_eq!(raw.status, StatusCode::OK, "{}", raw.text);
    assert_eq!(raw.body["resolution"], "raw");
    assert_eq!(values(&raw.body, "cpu_percent").len(), 12);
    // 1000 bytes per 15 s between consecutive samples.
    assert!(
        values(&raw.body, "network_rx_bytes_per_second").iter().all(|r| (r - 1000.0 / 15.0).abs() < 1e-9),
        "{}",
        raw.text
    );
    assert!(raw.body["series"]["memory_bytes"].is_null(), "only the asked series");
    let stepped = admin.get(&q(at(9, 0, 0), at(12, 0, 0), "&series=cpu_percent&step=60")).await;
    assert_eq!(values(&stepped.body, "cpu_percent"), vec![20.0, 20.0, 20.0]);
    let week = admin.get(&q(at(0, 0, 0) - Duration::days(6), at(12, 0, 0), "&series=cpu_percent")).await;
    assert_eq!(week.body["resolution"], "1m");
    assert_eq!(values(&week.body, "cpu_percent"), vec![20.0, 20.0, 20.0]);

    // Uptime checks and disk measurements stay raw and are averaged per bucket by the database
    // for a long range: four checks a minute, the second minute's last one down, latency 10 ms
    // then 30 ms alternating; one disk reading per minute rising by 1 KiB.
    let checks: Vec<metrics::Check> = (0..12)
        .map(|i| metrics::Check {
            site_id: site,
            customer_id: customer,
            at: at(10, 0, 0) + Duration::seconds(15 * i),
            status_code: Some(if i == 7 { 502 } else { 200 }),
            latency_ms: if i % 2 == 0 { 10 } else { 30 },
            up: i != 7,
            error: None,
        })
        .collect();
    metrics::insert_checks(&app.db, &checks).await.expect("checks");
    let disk: Vec<metrics::DiskUsage> = (0..3)
        .map(|i| metrics::DiskUsage {
            site_id: site,
            customer_id: customer,
            at: at(10, i, 5),
            bytes: 4096 + 1024 * i64::from(i),
            files: 3,
            limit_bytes: 1 << 30,
            complete: true,
        })
        .collect();
    metrics::insert_disk_usage(&app.db, &disk).await.expect("disk");
    let week = admin.get(&q(at(0, 0, 0) - Duration::days(6), at(12, 0, 0), "&series=up,response_ms,disk_bytes")).await;
    assert_eq!(week.status, StatusCode::OK, "{}", week.text);
    assert_eq!(values(&week.body, "up"), vec![1.0, 0.75, 1.0], "{}", week.text);
    assert_eq!(values(&week.body, "response_ms"), vec![20.0, 20.0, 20.0], "{}", week.text);
    assert_eq!(values(&week.body, "disk_bytes"), vec![4096.0, 5120.0, 6144.0], "{}", week.text);
    let uptime = |b: &serde_json::Value| b["uptime_percent"].as_f64().unwrap_or(f64::NAN);
    assert!((uptime(&week.body) - 1100.0 / 12.0).abs() < 1e-9, "{}", week.text);
    let raw = admin.get(&q(at(9, 0, 0), at(12, 0, 0), "&series=up,disk_bytes")).await;
    assert_eq!(values(&raw.body, "up").len(), 12, "{}", raw.text);
    assert_eq!(values(&raw.body, "disk_bytes").len(), 3, "{}", raw.text);
    assert!((uptime(&raw.body) - 1100.0 / 12.0).abs() < 1e-9, "{}", raw.text);

    // Retention, table by table: after 3 days the raw day is gone, the rollups stay; after 15
    // days the 1-minute buckets are gone too; the hour stays for its 400 days.
    let config = Config::load(|_| None).expect("default configuration").metrics;
    metrics::prune(&app.db, at(10, 0, 0) + Duration::days(3), &config).await.expect("prune");
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM site_samples").await, 0);
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM site_metrics_1m").await, 3);
    metrics::prune(&app.db, at(10, 0, 0) + Duration::days(15), &config).await.expect("prune");
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM site_metrics_1m").await, 0);
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM site_metrics_1h").await, 1);
    metrics::prune(&app.db, at(10, 0, 0) + Duration::days(401), &config).await.expect("prune");
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM site_metrics_1h").await, 0);
}
