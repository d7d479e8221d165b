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
