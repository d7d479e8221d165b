use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::support::{TestApp, ADMIN_EMAIL};

#[tokio::test]
async fn every_mutation_is_audited() {
    let app = TestApp::spawn().await;
    let mut admin = app.admin().await;
    admin.extra_headers.push(("x-request-id".into(), "req-audit-1".into()));
    let c = app.customer(&admin, "aud@example.com", "pro").await;
    admin.patch(&format!("/api/v1/customers/{c}"), &json!({"company_name": "Renamed"})).await;
    let site = admin
        .post("/api/v1/sites", &json!({"customer_id": c, "name": "www", "env": {"SECRET": "hunter2"}}))
        .await
        .str("id");
    admin.patch(&format!("/api/v1/sites/{site}"), &json!({"env": {"SECRET": "hunter3"}})).await;
    let user = admin.post(&format!("/api/v1/customers/{c}/users"), &json!({"email": "aud-user@example.com"})).await;
    let user_id = user.body["user"]["id"].as_str().expect("id").to_owned();
    admin.patch(&format!("/api/v1/customers/{c}/users/{user_id}"), &json!({"disabled": true})).await;
    let token = admin.post("/api/v1/tokens", &json!({"name": "t"})).await.str("id");
    admin.delete(&format!("/api/v1/tokens/{token}")).await;
    admin.delete(&format!("/api/v1/sites/{site}")).await;
    admin.delete(&format!("/api/v1/customers/{c}")).await;
    admin.post("/api/v1/auth/logout", &json!({})).await;

    let admin = app.admin().await;
    let res = admin.get("/api/v1/audit?limit=200").await;
    assert_eq!(res.status, StatusCode::OK);
    let actions: Vec<&str> =
        res.body["items"].as_array().expect("items").iter().filter_map(|e| e["action"].as_str()).collect();
    for expected in [
        "user.create",
        "auth.login",
        "customer.create",
        "customer.update",
        "site.create",
        "site.update",
        "user.disable",
        "token.create",
        "token.revoke",
        "site.delete",
        "customer.delete",
        "auth.logout",
    ] {
        assert!(actions.contains(&expected), "missing {expected} in {actions:?}");
    }
    assert!(!res.text.contains("hunter"), "secret values never reach the audit log");
    let entry =
        res.body["items"].as_array().expect("items").iter().find(|e| e["action"] == "customer.create").expect("entry");
    assert_eq!(entry["actor"], ADMIN_EMAIL);
    assert_eq!(entry["target_id"], c.as_str());
    assert_eq!(entry["request_id"], "req-audit-1");
    assert_eq!(entry["ip"], "127.0.0.1");

    // Filters: target, actor, time.
    let by_target = admin.get(&format!("/api/v1/audit?target_type=customer&target_id={c}")).await;
    let n = by_target.body["items"].as_array().expect("items").len();
    assert_eq!(n, 3, "create, update, delete: {}", by_target.text);
    let by_actor = admin.get("/api/v1/audit?actor=bootstrap").await;
    assert_eq!(by_actor.body["items"][0]["action"], "user.create");
    let future = admin.get("/api/v1/audit?since=2999-01-01T00:00:00Z").await;
    assert_eq!(future.body["items"].as_array().expect("items").len(), 0);
    let past = admin.get("/api/v1/audit?until=2000-01-01T00:00:00Z").await;
    assert_eq!(past.body["items"].as_array().expect("items").len(), 0);
    admin.get("/api/v1/audit?since=yesterday").await.assert_problem(StatusCode::BAD_REQUEST, "bad-request");
}

#[tokio::test]
async fn the_database_refuses_to_rewrite_history() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let backend = app.db.get_database_backend();
    let update =
        app.db.execute(Statement::from_string(backend, "UPDATE audit_log SET actor = 'someone-else'".to_owned())).await;
    assert!(update.is_err(), "UPDATE on audit_log must fail");
    let delete = app.db.execute(Statement::from_string(backend, "DELETE FROM audit_log".to_owned())).await;
    assert!(delete.is_err(), "DELETE on audit_log must fail");
}

#[tokio::test]
async fn customers_cannot_read_the_audit_log() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "nosy@example.com", "starter").await;
    let portal = app.customer_user(&admin, &c, "nosy-user@example.com").await;
    portal.get("/api/v1/audit").await.assert_problem(StatusCode::FORBIDDEN, "forbidden");
}
