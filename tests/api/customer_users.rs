use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Client, TestApp, PUBLIC_URL};

#[tokio::test]
async fn user_without_password_gets_a_one_time_link_from_the_public_url() {
    let app = TestApp::spawn().await;
    let mut admin = app.admin().await;
    let customer = app.customer(&admin, "owner@example.com", "starter").await;

    // A forged Host header must not leak into the link.
    admin.extra_headers.push(("host".into(), "evil.example".into()));
    let res = admin.post(&format!("/api/v1/customers/{customer}/users"), &json!({"email": "Portal@Example.com"})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    admin.extra_headers.clear();
    assert_eq!(res.body["user"]["email"], "portal@example.com");
    assert_eq!(res.body["user"]["has_password"], false);
    let link = res.str("set_password_url");
    assert!(link.starts_with(&format!("{PUBLIC_URL}/set-password?token=")), "{link}");
    assert!(!link.contains("evil"));
    let token = link.split("token=").nth(1).expect("token").to_owned();

    // No password yet: nobody can sign in as this user.
    let c = app.client();
    c.post("/api/v1/auth/login", &json!({"email": "portal@example.com", "password": "anything-at-all"}))
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");

    // The link's page renders, and the API redeems the token once.
    let page = c.get(&format!("/set-password?token={token}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("Choose your password"));
    let weak = c.post("/api/v1/auth/set-password", &json!({"token": token, "password": "12345678"})).await;
    assert_eq!(weak.error_fields(), ["password"]);
    let ok = c.post("/api/v1/auth/set-password", &json!({"token": token, "password": "Portal-Password-42"})).await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.text);
    let again = c.post("/api/v1/auth/set-password", &json!({"token": token, "password": "Another-Password-42"})).await;
    assert_eq!(again.error_fields(), ["token"]);
    let mut portal = app.client();
    let me = portal.login("portal@example.com", "Portal-Password-42").await;
    assert_eq!(me.body["user"]["role"], "customer");
    assert_eq!(me.body["user"]["customer_id"], customer.as_str());
}

#[tokio::test]
async fn the_set_password_form_works_without_javascript() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "form@example.com", "starter").await;
    let res =
        admin.post(&format!("/api/v1/customers/{customer}/users"), &json!({"email": "form-user@example.com"})).await;
    let token = res.str("set_password_url").split("token=").nth(1).expect("token").to_owned();
    let c = app.client();
    let bad = Client::finish(
        c.http.post(format!("{}/set-password", app.base)).form(&[("token", token.as_str()), ("password", "short")]),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text.contains("role=\"alert\""), "{}", bad.text);
    let good = Client::finish(
        c.http
            .post(format!("{}/set-password", app.base))
            .form(&[("token", token.as_str()), ("password", "Form-Password-42")]),
    )
    .await;
    assert_eq!(good.status, StatusCode::OK);
    assert!(good.text.contains("form-user@example.com"));
    app.client().login("form-user@example.com", "Form-Password-42").await;
}

#[tokio::test]
async fn list_create_with_password_and_disable() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "team@example.com", "pro").await;
    let portal = app.customer_user(&admin, &customer, "dev@example.com").await;
    let created = portal.post("/api/v1/tokens", &json!({"name": "deploy"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let token_client = Client::with_token(&app.base, &created.str("token"));
    assert_eq!(token_client.get("/api/v1/sites").await.status, StatusCode::OK);

    let list = admin.get(&format!("/api/v1/customers/{customer}/users")).await;
    assert_eq!(list.body.as_array().expect("array").len(), 1);
    let user_id = list.body[0]["id"].as_str().expect("id").to_owned();
    assert!(list.body[0].get("password_hash").is_none());

    admin
        .post(&format!("/api/v1/customers/{customer}/users"), &json!({"email": "dev@example.com"}))
        .await
        .assert_problem(StatusCode::CONFLICT, "conflict");
    let weak = admin
        .post(
            &format!("/api/v1/customers/{customer}/users"),
            &json!({"email": "x@example.com", "password": "qwertyuiop"}),
        )
        .await;
    assert_eq!(weak.error_fields(), ["password"]);

    // Disabling ends the session and revokes tokens at once.
    let res = admin.patch(&format!("/api/v1/customers/{customer}/users/{user_id}"), &json!({"disabled": true})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["disabled"], true);
    portal.get("/api/v1/sites").await.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    token_client.get("/api/v1/sites").await.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    app.client()
        .post("/api/v1/auth/login", &json!({"email": "dev@example.com", "password": "Portal-Password-42"}))
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");

    // Re-enabling lets the user sign in again (tokens stay revoked).
    admin.patch(&format!("/api/v1/customers/{customer}/users/{user_id}"), &json!({"disabled": false})).await;
    app.client().login("dev@example.com", "Portal-Password-42").await;
    token_client.get("/api/v1/sites").await.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");

    let unknown = uuid::Uuid::now_v7();
    admin.get(&format!("/api/v1/customers/{unknown}/users")).await.assert_problem(StatusCode::NOT_FOUND, "not-found");
}
