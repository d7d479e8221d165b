//! The Redis caches of monitoring reads (`berth_core::cache`), against the real Redis and
//! PostgreSQL:
//! - a range read from the rollups is answered from `<prefix>metrics:site:<id>:v1:…` for
//!   5 minutes, a raw range never is, and another tenant is refused before the cache is looked at;
//! - the admin dashboard's aggregates (`<prefix>dashboard:v1`, 1 minute) and the firing and
//!   pending alerts (`<prefix>alerts:states:v1`, 30 s) are read from the database once within
//!   their lifetime (PostgreSQL's own statement counts say so), only ever for administrators,
//!   and are dropped when an incident is acknowledged, a silence created or the evaluation job
//!   changes an alert;
//! - what a reader read before an invalidation is never served after it.

use std::time::{Duration, Instant};

use berth_core::cache::{Cache, Fresh};
use berth_core::store::metrics::{self, Sample};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use uuid::Uuid;

use crate::support::{redis_url, TestApp};

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

/// How often PostgreSQL ran statements whose text contains `needle` in this test's database
/// (`pg_stat_statements`, preloaded by scripts/test.sh; constants in the text are normalised
/// away, so this query never counts itself).
async fn statements(app: &TestApp, needle: &str) -> i64 {
    let sql = format!(
        "SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT) AS calls FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query LIKE '%{needle}%'"
    );
    let row = app
        .db
        .query_one(Statement::from_string(app.db.get_database_backend(), sql))
        .await
        .expect("pg_stat_statements (scripts/test.sh preloads it)")
        .expect("a row");
    row.try_get("", "calls").expect("calls")
}

async fn enable_statement_counts(app: &TestApp) {
    app.db
        .execute(Statement::from_string(
            app.db.get_database_backend(),
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements".to_owned(),
        ))
        .await
        .expect("pg_stat_statements is preloaded by scripts/test.sh");
}

async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url()).expect("redis url").get_multiplexed_async_connection().await.expect("redis")
}

/// The remaining lifetime of a key in seconds (-2: no such key).
async fn ttl(key: &str) -> i64 {
    redis::cmd("TTL").arg(key).query_async(&mut redis().await).await.expect("TTL")
}

/// A sample of a site taken just now, as the collector writes it.
async fn sample_now(app: &TestApp, site_id: &str, customer: &str, cpu: f64) {
    let now = chrono::Utc::now();
    metrics::ensure_partitions(&app.db, now).await.expect("partitions");
    let sample = Sample {
        site_id: site_id.parse().expect("uuid"),
        customer_id: customer.parse().expect("uuid"),
        at: now,
        cpu_usec: 0,
        cpu_percent: Some(cpu),
        memory_bytes: 64 << 20,
        memory_limit_bytes: 512 << 20,
        net_rx_bytes: 0,
        net_tx_bytes: 0,
        block_read_bytes: 0,
        block_write_bytes: 0,
        pids: 1,
        restarts: 0,
    };
    metrics::insert_samples(&app.db, &[sample]).await.expect("insert a sample");
}

#[tokio::test]
async fn dashboard_and_alert_states_are_read_once_per_lifetime_for_admins_and_dropped_on_change() {
    let app = TestApp::spawn().await;
    enable_statement_counts(&app).await;
    let admin = app.admin().await;
    let mine = app.customer(&admin, "states@example.com", "business").await;
    let theirs = app.customer(&admin, "bystander@example.com", "business").await;
    let res = admin.post("/api/v1/sites", &json!({"customer_id": mine, "name": "flaky"})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let site = res.str("id");
    let incident = super::fire_down(&app, site.parse().expect("uuid"), &mine, 90).await;
    sample_now(&app, &site, &mine, 42.0).await;
    let owner = app.customer_user(&admin, &mine, "owner@states.example").await;
    let other = app.customer_user(&admin, &theirs, "other@states.example").await;
    let (dashboard_key, states_key) =
        (format!("{}dashboard:v1", app.redis_prefix), format!("{}alerts:states:v1", app.redis_prefix));

    // The first dashboard load reads the database and fills both keys, with their lifetimes.
    let page = admin.get("/admin").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("flaky"), "the firing alert and the busiest site are on the dashboard");
    assert!((1..=60).contains(&ttl(&dashboard_key).await), "dashboard ttl {}", ttl(&dashboard_key).await);
    assert!((1..=30).contains(&ttl(&states_key).await), "states ttl {}", ttl(&states_key).await);

    // Within their lifetime the dashboard and the firing alerts (page and API) never reach the
    // database again: not the latest-sample ranking, not the alerts table.
    let (samples0, alerts0) = (statements(&app, "FROM site_samples").await, statements(&app, "FROM \"alerts\"").await);
    assert!(samples0 >= 2 && alerts0 >= 1, "the first load was counted: {samples0} {alerts0}");
    for _ in 0..3 {
        let again = admin.get("/admin").await;
        assert_eq!(again.status, StatusCode::OK);
        assert!(again.text.contains("flaky"));
        let firing = admin.get("/api/v1/alerts?state=firing").await;
        assert_eq!(firing.status, StatusCode::OK, "{}", firing.text);
        assert_eq!(firing.body["items"].as_array().map(Vec::len), Some(1), "{}", firing.text);
        assert_eq!(firing.body["items"][0]["site_id"], site.as_str());
    }
    assert_eq!(statements(&app, "FROM site_samples").await, samples0, "the dashboard came from the cache");
    assert_eq!(statements(&app, "FROM \"alerts\"").await, alerts0, "the alert states came from the cache");

    // Customers never read the cached list of everyone's alerts: their own from the database,
    // another customer nothing, and the dashboard is not theirs at all.
    let own = owner.get("/api/v1/alerts?state=firing").await;
    assert_eq!(own.body["items"].as_array().map(Vec::len), Some(1), "{}", own.text);
    assert!(statements(&app, "FROM \"alerts\"").await > alerts0, "a customer's read went to the database");
    let none = other.get("/api/v1/alerts?state=firing").await;
    assert_eq!(none.status, StatusCode::OK, "{}", none.text);
    assert_eq!(none.body["items"], json!([]), "another customer sees nothing of the cached list");
    assert_ne!(other.get("/admin").await.status, StatusCode::OK, "the dashboard is for administrators");

    // Acknowledging the incident drops both keys; the next read is fresh and fills them again.
    let ack = admin.post(&format!("/api/v1/incidents/{incident}/acknowledge"), &json!({})).await;
    assert_eq!(ack.status, StatusCode::OK, "{}", ack.text);
    assert_eq!(ttl(&states_key).await, -2, "alert states dropped on acknowledge");
    assert_eq!(ttl(&dashboard_key).await, -2, "dashboard dropped on acknowledge");
    assert_eq!(admin.get("/api/v1/alerts?state=firing").await.body["items"].as_array().map(Vec::len), Some(1));
    assert!((1..=30).contains(&ttl(&states_key).await));

    // So does a silence.
    let ends = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let silence = admin.post("/api/v1/alert-silences", &json!({"scope": "all", "ends_at": ends})).await;
    assert_eq!(silence.status, StatusCode::CREATED, "{}", silence.text);
    assert_eq!(ttl(&states_key).await, -2, "alert states dropped when a silence is created");
    app.stop().await;
}

#[tokio::test]
async fn an_alert_the_evaluation_changes_is_never_served_stale_from_the_cache() {
    let app = TestApp::spawn_with_workers(&[]).await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "busy@example.com", "business").await;
    let res = admin.post("/api/v1/sites", &json!({"customer_id": customer, "name": "spinner"})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let site = res.str("id");
    // The CPU rule fires at once, so one evaluation round takes the alert from ok to firing.
    super::rules::set_rule(&admin, "cpu", json!({"for_seconds": 0})).await;

    // Nothing fires yet, and that answer is now cached for 30 seconds.
    let before = admin.get("/api/v1/alerts?state=firing").await;
    assert_eq!(before.body["items"], json!([]), "{}", before.text);
    let states_key = format!("{}alerts:states:v1", app.redis_prefix);
    assert!((1..=30).contains(&ttl(&states_key).await), "cached");

    // A busy sample, one evaluation by the worker: the alert fires in the database...
    sample_now(&app, &site, &customer, 99.0).await;
    berth_core::jobs::enqueue(&app.db, &berth_core::jobs::alerts::EvaluateAlerts::default()).await.expect("enqueue");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = app
            .db
            .query_one(Statement::from_string(
                app.db.get_database_backend(),
                format!("SELECT state FROM alerts WHERE site_id = '{site}' AND metric = 'cpu'"),
            ))
            .await
            .expect("query");
        if row.is_some_and(|r| r.try_get::<String>("", "state").is_ok_and(|s| s == "firing")) {
            break;
        }
        assert!(Instant::now() < deadline, "the evaluation never fired the CPU alert");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ...and the API says so within moments, not when the cached empty list expires (30 s).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = admin.get("/api/v1/alerts?state=firing").await;
        let items = now.body["items"].as_array().cloned().unwrap_or_default();
        if items.iter().any(|a| a["site_id"] == site.as_str() && a["metric"] == "cpu") {
            break;
        }
        assert!(Instant::now() < deadline, "a stale alert state was served after the evaluation changed it");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.discard_jobs().await;
    app.stop().await;
}

#[tokio::test]
async fn what_a_reader_read_before_an_invalidation_is_never_served_after_it() {
    let conn = berth_server::startup::connect_redis(&redis_url()).await.expect("redis");
    let prefix = format!("berth-test:{}:", Uuid::new_v4().simple());
    let cache = Cache::redis(conn, &prefix);
    let key = "alerts:states:v1";
    // A reader misses and reads the database; meanwhile a change commits and invalidates.
    let Fresh::<Vec<u32>>::Miss(ticket) = cache.get_fresh(key).await else { panic!("a miss on an empty cache") };
    cache.invalidate(&[key]).await;
    // The slow reader stores what it read before the change: it must not be served.
    cache.put_fresh(key, ticket, &vec![1u32], Duration::from_secs(30)).await;
    let Fresh::<Vec<u32>>::Miss(fresh_ticket) = cache.get_fresh(key).await else { panic!("a stale value was served") };
    // A reader that started after the change is served.
    cache.put_fresh(key, fresh_ticket, &vec![2u32], Duration::from_secs(30)).await;
    assert!(matches!(cache.get_fresh::<Vec<u32>>(key).await, Fresh::Hit(v) if v == [2]));
    // Without Redis there is no cache at all.
    assert!(matches!(Cache::off().get_fresh::<Vec<u32>>(key).await, Fresh::Off));
    let mut conn = redis().await;
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.expect("KEYS");
    let _: () = redis::cmd("DEL").arg(keys).query_async(&mut conn).await.expect("DEL");
}
