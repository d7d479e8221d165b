//! The Redis cache of metrics aggregations, against the real Redis: a range read from the
//! rollups is answered from `<prefix>metrics:site:<id>:v1:…` for 5 minutes, a raw range never is,
//! and another tenant is refused before the cache is looked at.

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};

use crate::support::TestApp;

async fn minute_row(app: &TestApp, site: &str, customer: &str, bucket_ms: i64, cpu: f64) {
    let sql = format!(
        "INSERT INTO site_metrics_1m (site_id, customer_id, bucket_ms, samples, cpu_percent_avg, cpu_percent_max, \
         memory_bytes_avg, memory_bytes_max, memory_limit_bytes, net_rx_bytes, net_tx_bytes, block_read_bytes, \
         block_write_bytes, pids_max, restarts_max) VALUES \
         ('{site}', '{customer}', {bucket_ms}, 4, {cpu}, {cpu}, 1000, 1000, 2000, 0, 0, 0, 0, 1, 0)"
    );
    app.db.execute(Statement::from_string(app.db.get_database_backend(), sql)).await.expect("insert a rollup");
}

#[tokio::test]
async fn rollup_ranges_are_cached_in_redis_for_five_minutes_per_site() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mine = app.customer(&admin, "cache@example.com", "business").await;
    let theirs = app.customer(&admin, "nosy@example.com", "business").await;
    let res = admin.post("/api/v1/sites", &serde_json::json!({"customer_id": mine, "name": "cached"})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let site = res.str("id");
    let owner = app.customer_user(&admin, &mine, "owner@cache.example").await;
    let other = app.customer_user(&admin, &theirs, "other@cache.example").await;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let minute = now_ms.div_euclid(60_000) * 60_000;
    minute_row(&app, &site, &mine, minute - 3 * 3_600_000, 10.0).await;

    let day =
        format!("/api/v1/sites/{site}/metrics?series=cpu_percent&from={}&to={}", rfc3339(-24 * 3600), rfc3339(120));
    let first = owner.get(&day).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.body["resolution"], "1m");
    assert_eq!(first.body["series"]["cpu_percent"].as_array().map(Vec::len), Some(1), "{}", first.text);
    let keys = app.redis_keys().await;
    let prefix = format!("{}metrics:site:{site}:v1:", app.redis_prefix);
    assert_eq!(keys.iter().filter(|k| k.starts_with(&prefix)).count(), 1, "{keys:?}");
    let key = keys.iter().find(|k| k.starts_with(&prefix)).expect("key").clone();
    let client = redis::Client::open(crate::support::redis_url()).expect("redis url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
    let ttl: i64 = redis::cmd("TTL").arg(&key).query_async(&mut conn).await.expect("TTL");
    assert!((1..=300).contains(&ttl), "ttl {ttl}");

    // A bucket rolled up since: the cached answer stands until it expires.
    minute_row(&app, &site, &mine, minute - 2 * 3_600_000, 20.0).await;
    let second = owner.get(&day).await;
    assert_eq!(second.body, first.body, "answered from the cache");
    redis::cmd("DEL").arg(&key).query_async::<()>(&mut conn).await.expect("DEL");
    let third = owner.get(&day).await;
    assert_eq!(third.body["series"]["cpu_percent"].as_array().map(Vec::len), Some(2), "{}", third.text);

    // Another tenant is refused although the answer is cached; raw ranges are never cached.
    other.get(&day).await.assert_problem(StatusCode::NOT_FOUND, "not-found");
    let hour = format!("/api/v1/sites/{site}/metrics?series=cpu_percent");
    assert_eq!(owner.get(&hour).await.body["resolution"], "raw");
    let keys = app.redis_keys().await;
    assert_eq!(keys.iter().filter(|k| k.starts_with(&prefix)).count(), 1, "only the day's answer: {keys:?}");
    app.stop().await;
}

/// An RFC 3339 instant `offset_seconds` from now, escaped for a query string.
fn rfc3339(offset_seconds: i64) -> String {
    let at = chrono::Utc::now() + chrono::Duration::seconds(offset_seconds);
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).replace(':', "%3A").replace('+', "%2B")
}
