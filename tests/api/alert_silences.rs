//! Silences through the API: admins only, validated field by field (a silence always ends),
//! audited, expired by DELETE and then listed only with `include_ended`.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn silences_are_admin_only_validated_audited_and_expire() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "quiet@example.com", "business").await;
    let owner = app.customer_user(&admin, &customer, "owner@quiet.example").await;
    let in_an_hour = (Utc::now() + Duration::hours(1)).to_rfc3339();

    owner.get("/api/v1/alert-silences").await.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    owner
        .post("/api/v1/alert-silences", &json!({"scope": "all", "ends_at": in_an_hour}))
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");

    let res = admin.post("/api/v1/alert-silences", &json!({"scope": "all"})).await;
    res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(res.error_fields(), ["ends_at"], "a silence always ends: {}", res.text);
    let past = (Utc::now() - Duration::minutes(5)).to_rfc3339();
    let res = admin.post("/api/v1/alert-silences", &json!({"scope": "all", "ends_at": past})).await;
    assert_eq!(res.error_fields(), ["ends_at"], "{}", res.text);
    let far = (Utc::now() + Duration::days(91)).to_rfc3339();
    let res = admin.post("/api/v1/alert-silences", &json!({"scope": "all", "ends_at": far})).await;
    assert_eq!(res.error_fields(), ["ends_at"], "{}", res.text);
    let res = admin
        .post("/api/v1/alert-silences", &json!({"scope": "customer", "metric": "bandwidth", "ends_at": in_an_hour}))
        .await;
    let mut fields = res.error_fields();
    fields.sort();
    assert_eq!(fields, ["customer_id", "metric"], "{}", res.text);
    let res = admin.post("/api/v1/alert-silences", &json!({"scope": "everything", "ends_at": in_an_hour})).await;
    assert_eq!(res.error_fields(), ["scope"], "{}", res.text);
    let res = admin
        .post(
            "/api/v1/alert-silences",
            &json!({"scope": "site", "site_id": uuid::Uuid::now_v7(), "ends_at": in_an_hour}),
        )
        .await;
    assert_eq!(res.error_fields(), ["site_id"], "an unknown site: {}", res.text);

    let res = admin
        .post(
            "/api/v1/alert-silences",
            &json!({"scope": "customer", "customer_id": customer, "metric": "down", "ends_at": in_an_hour, "reason": "moving their DNS"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    assert_eq!(res.body["active"], true);
    assert_eq!(res.body["created_by"], crate::support::ADMIN_EMAIL);
    assert_eq!((res.body["scope"].as_str(), res.body["metric"].as_str()), (Some("customer"), Some("down")));
    let id = res.str("id");
    let listed = admin.get("/api/v1/alert-silences").await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(1), "{}", listed.text);
    let audit = admin.get("/api/v1/audit?action=alert_silence.create").await;
    assert!(audit.text.contains(&id) && audit.text.contains("moving their DNS"), "{}", audit.text);

    owner.delete(&format!("/api/v1/alert-silences/{id}")).await.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(admin.delete(&format!("/api/v1/alert-silences/{id}")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(admin.get("/api/v1/alert-silences").await.body, json!([]), "expired: no longer in force");
    let all = admin.get("/api/v1/alert-silences?include_ended=true").await;
    assert_eq!(all.body.as_array().map(Vec::len), Some(1), "{}", all.text);
    assert_eq!(all.body[0]["active"], false);
    let audit = admin.get("/api/v1/audit?action=alert_silence.expire").await;
    assert!(audit.text.contains(&id), "{}", audit.text);
    admin
        .delete(&format!("/api/v1/alert-silences/{}", uuid::Uuid::now_v7()))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    app.stop().await;
}

/// The embedded default: on SQLite, a silence covers a firing (its incident says `silenced`,
/// no notification job is queued), and the dashboard's ranking query answers.
#[tokio::test]
async fn silences_and_the_dashboard_work_on_sqlite() {
    use berth_core::alerting::{Phase, Severity, Status, Transition};
    use berth_core::store::alerts::{record, Evaluated};
    use berth_core::store::metrics::{insert_samples, Sample};
    use sea_orm::ConnectionTrait;

    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("berth.db").display());
    let app = TestApp::spawn_with(&[("BERTH_DATABASE_URL", &url)]).await;
    assert_eq!(app.db.get_database_backend(), sea_orm::DbBackend::Sqlite);
    let admin = app.admin().await;
    let customer = app.customer(&admin, "lite@example.com", "business").await;
    let res = admin
        .post(
            "/api/v1/notification-channels",
            &json!({"kind": "email", "target": "ops@lite.example", "customer_id": customer}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let site = admin
        .post("/api/v1/sites", &json!({"customer_id": customer, "name": "litesite", "domains": ["lite.example"]}))
        .await;
    assert_eq!(site.status, StatusCode::CREATED, "{}", site.text);
    let site_id: uuid::Uuid = site.str("id").parse().expect("uuid");
    let in_an_hour = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let res = admin
        .post("/api/v1/alert-silences", &json!({"scope": "customer", "customer_id": customer, "ends_at": in_an_hour}))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);

    let now = Utc::now();
    let next = Status {
        phase: Phase::Firing,
        severity: Some(Severity::Critical),
        pending_since: Some(now),
        clear_since: None,
        fired_at: Some(now),
        resolved_at: None,
        notified: Some(Severity::Warning),
    };
    let evaluated = Evaluated {
        site_id,
        customer_id: customer.parse().expect("uuid"),
        metric: "cpu",
        rule_id: "01000000-0000-7000-8000-00000000a001".parse().expect("uuid"),
        value: Some(97.0),
        previous: None,
        next,
        transition: Some(Transition::Fired(Severity::Critical)),
        detail: "CPU at 97.0 % of one core (critical at 90 %)".into(),
        now,
    };
    let incident = record(&app.db, evaluated).await.expect("record").expect("incident");
    let res = admin.get(&format!("/api/v1/incidents/{incident}")).await;
    let kinds: Vec<&str> =
        res.body["events"].as_array().expect("events").iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["fired", "silenced"], "{}", res.text);
    assert!(crate::support::pending_jobs(&app.db).await.is_empty(), "no notification job while silenced");

    let sample = Sample {
        site_id,
        customer_id: customer.parse().expect("uuid"),
        at: now,
        cpu_usec: 0,
        cpu_percent: Some(97.0),
        memory_bytes: 100 * 1024 * 1024,
        memory_limit_bytes: 200 * 1024 * 1024,
        net_rx_bytes: 0,
        net_tx_bytes: 0,
        block_read_bytes: 0,
        block_write_bytes: 0,
        pids: 1,
        restarts: 0,
    };
    insert_samples(&app.db, &[sample]).await.expect("samples");
    let page = admin.get("/admin").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("97.0 %") && page.text.contains("100 MiB (50 % of the limit)"), "{}", page.text);
    app.stop().await;
}
