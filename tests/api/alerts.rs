//! The alerting API without a runtime: channels (webhook targets checked against internal
//! addresses, tenancy), incidents of another tenant, and the rules (admins only, validated).

use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn webhook_channels_to_internal_addresses_are_refused_and_channels_are_tenant_scoped() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mine = app.customer(&admin, "hooks@example.com", "business").await;
    let theirs = app.customer(&admin, "nosy@example.com", "business").await;
    let owner = app.customer_user(&admin, &mine, "owner@hooks.example").await;
    let other = app.customer_user(&admin, &theirs, "other@nosy.example").await;

    for target in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.5/hook",
        "http://192.168.1.10/hook",
        "ftp://example.com/hook",
    ] {
        let res = owner.post("/api/v1/notification-channels", &json!({"kind": "webhook", "target": target})).await;
        res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
        assert_eq!(res.error_fields(), ["target"], "{target}: {}", res.text);
    }
    // Slack and Discord channels are webhooks too, under the same rules.
    for kind in ["slack", "discord"] {
        for target in ["http://127.0.0.1:9/hook", "http://10.0.0.5/hook"] {
            let res = owner.post("/api/v1/notification-channels", &json!({"kind": kind, "target": target})).await;
            res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
            assert_eq!(res.error_fields(), ["target"], "{kind} {target}: {}", res.text);
        }
    }
    // Only an administrator may let a webhook reach private addresses.
    let res = owner
        .post(
            "/api/v1/notification-channels",
            &json!({"kind": "webhook", "target": "http://127.0.0.1:9/x", "allow_private": true}),
        )
        .await;
    res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let res = admin
        .post(
            "/api/v1/notification-channels",
            &json!({"kind": "webhook", "target": "http://127.0.0.1:9/x", "allow_private": true}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    assert_eq!(res.body["customer_id"], serde_json::Value::Null, "an admin channel");
    let bad = owner.post("/api/v1/notification-channels", &json!({"kind": "sms", "target": "+1"})).await;
    bad.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let bad = owner.post("/api/v1/notification-channels", &json!({"kind": "email", "target": "not an address"})).await;
    bad.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");

    // A customer's channel is always their own, whatever customer_id they name.
    let res = owner
        .post(
            "/api/v1/notification-channels",
            &json!({"kind": "email", "target": "me@hooks.example", "customer_id": theirs}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    assert_eq!(res.body["customer_id"], mine.as_str());
    let channel = res.str("id");
    assert_eq!(owner.get("/api/v1/notification-channels").await.body.as_array().map(Vec::len), Some(1));
    assert_eq!(other.get("/api/v1/notification-channels").await.body, json!([]));
    assert_eq!(admin.get("/api/v1/notification-channels").await.body.as_array().map(Vec::len), Some(2));
    other
        .delete(&format!("/api/v1/notification-channels/{channel}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    assert_eq!(owner.delete(&format!("/api/v1/notification-channels/{channel}")).await.status, StatusCode::NO_CONTENT);

    // Incidents that do not exist for the caller are 404, a malformed id too.
    let missing = uuid::Uuid::now_v7();
    owner.get(&format!("/api/v1/incidents/{missing}")).await.assert_problem(StatusCode::NOT_FOUND, "not-found");
    owner.get("/api/v1/incidents/nope").await.assert_problem(StatusCode::NOT_FOUND, "not-found");
    owner.get("/api/v1/incidents?status=sleeping").await.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");

    // Rules: the six global defaults, admins only, validated.
    owner.get("/api/v1/alert-rules").await.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let rules = admin.get("/api/v1/alert-rules").await;
    let mut metrics: Vec<&str> =
        rules.body.as_array().expect("rules").iter().map(|r| r["metric"].as_str().expect("metric")).collect();
    metrics.sort_unstable();
    assert_eq!(metrics, ["certificate", "cpu", "disk", "down", "memory", "restarts"]);
    let cpu = rules.body.as_array().expect("rules").iter().find(|r| r["metric"] == "cpu").expect("cpu").clone();
    assert_eq!(
        (cpu["warning"].as_f64(), cpu["critical"].as_f64(), cpu["for_seconds"].as_i64()),
        (Some(70.0), Some(90.0), Some(300))
    );
    let path = format!("/api/v1/alert-rules/{}", cpu["id"].as_str().expect("id"));
    owner.patch(&path, &json!({"for_seconds": 1})).await.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let res = admin.patch(&path, &json!({"warning": 95, "for_seconds": -1})).await;
    res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let mut fields = res.error_fields();
    fields.sort();
    assert_eq!(fields, ["critical", "for_seconds"], "{}", res.text);
    let res = admin.patch(&path, &json!({"for_seconds": 60, "enabled": false})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!((res.body["for_seconds"].as_i64(), res.body["enabled"].as_bool()), (Some(60), Some(false)));
    // Days until a certificate expires: lower is worse, so critical may not exceed warning.
    let cert = rules.body.as_array().expect("rules").iter().find(|r| r["metric"] == "certificate").expect("seeded");
    let path = format!("/api/v1/alert-rules/{}", cert["id"].as_str().expect("id"));
    let res = admin.patch(&path, &json!({"warning": 7, "critical": 10})).await;
    res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(res.error_fields(), ["critical"], "{}", res.text);
    let res = admin.patch(&path, &json!({"warning": 21, "critical": 7})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    app.stop().await;
}
