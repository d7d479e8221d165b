use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Client, TestApp};

#[tokio::test]
async fn create_use_list_revoke() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let res = admin.post("/api/v1/tokens", &json!({"name": "ci deploy"})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let token = res.str("token");
    assert!(token.starts_with("berth_"));
    let id = res.str("id");

    let api = Client::with_token(&app.base, &token);
    let me = api.get("/api/v1/auth/me").await;
    assert_eq!(me.body["user"]["role"], "admin");
    assert!(me.body["csrf_token"].is_null());
    // Bearer calls need no CSRF token: a browser cannot forge them.
    assert_eq!(
        api.post("/api/v1/customers", &json!({"email": "tok@example.com", "company_name": "T", "plan": "starter"}))
            .await
            .status,
        StatusCode::CREATED
    );

    let list = admin.get("/api/v1/tokens").await;
    assert_eq!(list.body[0]["name"], "ci deploy");
    assert!(!list.text.contains(&token), "the token is shown once only");
    assert!(list.body[0]["last_used_at"].is_string());

    assert_eq!(admin.delete(&format!("/api/v1/tokens/{id}")).await.status, StatusCode::NO_CONTENT);
    api.get("/api/v1/auth/me").await.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(admin.get("/api/v1/tokens").await.body[0]["revoked_at"].is_string());

    Client::with_token(&app.base, "berth_0000")
        .get("/api/v1/sites")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    let mut basic = app.client();
    basic.extra_headers.push(("authorization".into(), "Basic YTpi".into()));
    basic.get("/api/v1/sites").await.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    admin
        .post("/api/v1/tokens", &json!({"name": ""}))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
}

#[tokio::test]
async fn tokens_belong_to_their_owner() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "own@example.com", "starter").await;
    let portal = app.customer_user(&admin, &c, "own-user@example.com").await;
    let mine = admin.post("/api/v1/tokens", &json!({"name": "admin's"})).await.str("id");
    assert_eq!(portal.get("/api/v1/tokens").await.body.as_array().expect("array").len(), 0);
    portal.delete(&format!("/api/v1/tokens/{mine}")).await.assert_problem(StatusCode::NOT_FOUND, "not-found");
}
