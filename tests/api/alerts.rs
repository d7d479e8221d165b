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

    // Rules: the eight global defaults, admins only, validated.
    owner.get("/api/v1/alert-rules").await.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let rules = admin.get("/api/v1/alert-rules").await;
    let mut metrics: Vec<&str> =
        rules.body.as_array().expect("rules").iter().map(|r| r["metric"].as_str().expect("metric")).collect();
    metrics.sort_unstable();
    assert_eq!(metrics, ["backup", "backup_check", "certificate", "cpu", "disk", "down", "memory", "restarts"]);
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

#[tokio::test]
async fn plan_and_site_rules_are_added_and_removed_and_global_ones_stay() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "rules@example.com", "business").await;
    let owner = app.customer_user(&admin, &customer, "owner@rules.example").await;
    let site = admin
        .post("/api/v1/sites", &json!({"customer_id": customer, "name": "ruled", "domains": ["ruled.example"]}))
        .await;
    assert_eq!(site.status, StatusCode::CREATED, "{}", site.text);
    let site_id = site.str("id");

    let plan_rule = json!({"metric": "cpu", "scope": "plan", "plan_id": "business", "warning": 50, "critical": 60, "for_seconds": 120});
    owner.post("/api/v1/alert-rules", &plan_rule).await.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let res = admin.post("/api/v1/alert-rules", &plan_rule).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    assert_eq!((res.body["scope"].as_str(), res.body["plan_id"].as_str()), (Some("plan"), Some("business")));
    assert_eq!(res.body["enabled"], true);
    let plan_rule_id = res.str("id");
    // One rule per metric and plan: a second is a conflict.
    admin.post("/api/v1/alert-rules", &plan_rule).await.assert_problem(StatusCode::CONFLICT, "conflict");
    // Every field is checked, each error named.
    let res = admin
        .post(
            "/api/v1/alert-rules",
            &json!({"metric": "disk-ish", "scope": "site", "warning": 9, "critical": 3, "for_seconds": 100000}),
        )
        .await;
    res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let mut fields = res.error_fields();
    fields.sort();
    assert_eq!(fields, ["critical", "for_seconds", "metric", "site_id"], "{}", res.text);
    let res = admin
        .post(
            "/api/v1/alert-rules",
            &json!({"metric": "down", "scope": "global", "warning": 1, "critical": 2, "for_seconds": 0}),
        )
        .await;
    assert_eq!(res.error_fields(), ["scope"], "{}", res.text);
    let res = admin
        .post("/api/v1/alert-rules", &json!({"metric": "down", "scope": "plan", "plan_id": "gold-ish", "warning": 1, "critical": 2, "for_seconds": 0}))
        .await;
    assert_eq!(res.error_fields(), ["plan_id"], "{}", res.text);
    let res = admin
        .post(
            "/api/v1/alert-rules",
            &json!({"metric": "memory", "scope": "site", "site_id": site_id, "warning": 85, "critical": 99, "for_seconds": 60, "enabled": false}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    assert_eq!((res.body["site_id"].as_str(), res.body["enabled"].as_bool()), (Some(site_id.as_str()), Some(false)));
    // Eight seeded global rules, plus the plan's and the site's own.
    assert_eq!(admin.get("/api/v1/alert-rules").await.body.as_array().map(Vec::len), Some(10));

    // Global rules are edited, never deleted; overrides are deleted (audited).
    let rules = admin.get("/api/v1/alert-rules").await;
    let global = rules.body.as_array().expect("rules").iter().find(|r| r["scope"] == "global").expect("global").clone();
    admin
        .delete(&format!("/api/v1/alert-rules/{}", global["id"].as_str().expect("id")))
        .await
        .assert_problem(StatusCode::CONFLICT, "conflict");
    owner
        .delete(&format!("/api/v1/alert-rules/{plan_rule_id}"))
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(admin.delete(&format!("/api/v1/alert-rules/{plan_rule_id}")).await.status, StatusCode::NO_CONTENT);
    admin
        .delete(&format!("/api/v1/alert-rules/{plan_rule_id}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    assert_eq!(admin.get("/api/v1/alert-rules").await.body.as_array().map(Vec::len), Some(9));
    let audit = admin.get("/api/v1/audit?action=alert_rule.delete").await;
    assert!(audit.text.contains(&plan_rule_id), "{}", audit.text);
    let audit = admin.get("/api/v1/audit?action=alert_rule.create").await;
    assert_eq!(audit.body["items"].as_array().map(Vec::len), Some(2), "{}", audit.text);
    app.stop().await;
}

#[tokio::test]
async fn a_channel_test_goes_through_the_real_mailer_and_only_for_its_owner() {
    let sink = crate::support::services::SmtpSink::start().await;
    let app = TestApp::spawn_with_workers(&[("BERTH_SMTP_URL", &sink.url)]).await;
    let admin = app.admin().await;
    let mine = app.customer(&admin, "tested@example.com", "business").await;
    let theirs = app.customer(&admin, "untested@example.com", "business").await;
    let owner = app.customer_user(&admin, &mine, "owner@tested.example").await;
    let other = app.customer_user(&admin, &theirs, "other@untested.example").await;
    let res =
        owner.post("/api/v1/notification-channels", &json!({"kind": "email", "target": "ops@tested.example"})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let channel = res.str("id");

    other
        .post(&format!("/api/v1/notification-channels/{channel}/test"), &json!({}))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    let res = owner.post(&format!("/api/v1/notification-channels/{channel}/test"), &json!({})).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    assert_eq!(res.body["id"], channel.as_str());
    let mails = sink.wait_for(1).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("Subject: [TEST] Test notification from Berth"), "{}", mails[0]);
    assert!(mails[0].contains("To: ops@tested.example"), "{}", mails[0]);
    let audit = admin.get("/api/v1/audit?action=notification_channel.test").await;
    assert!(audit.text.contains(&channel), "{}", audit.text);
    app.wait_for_idle_queue().await;
    assert_eq!(sink.messages().len(), 1, "one test, one message");
    app.stop().await;
}
