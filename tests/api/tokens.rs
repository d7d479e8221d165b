use reqwest::StatusCode;
use serde_json::json;

use berth_core::store::tokens::is_cached;

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

/// A read with a token writes nothing while the token's last use was stamped within the
/// minute: the stamp stays what the first use set, and comes back a minute later.
#[tokio::test]
async fn token_reads_do_not_write_within_a_minute() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let token = admin.post("/api/v1/tokens", &json!({"name": "reader"})).await.str("token");
    let api = Client::with_token(&app.base, &token);
    let stamp = || async {
        let row = app
            .db
            .query_one(Statement::from_string(
                app.db.get_database_backend(),
                "SELECT CAST(last_used_at AS TEXT) AS at FROM api_tokens WHERE name = 'reader'".to_owned(),
            ))
            .await
            .expect("query")
            .expect("row");
        row.try_get::<Option<String>>("", "at").expect("at")
    };
    assert_eq!(stamp().await, None);
    assert_eq!(api.get("/api/v1/auth/me").await.status, StatusCode::OK);
    let first = stamp().await.expect("the first use is stamped");
    for _ in 0..5 {
        assert_eq!(api.get("/api/v1/sites").await.status, StatusCode::OK);
    }
    assert_eq!(stamp().await.as_deref(), Some(first.as_str()), "reads within the minute wrote a new stamp");
    // A minute on, the next use stamps again.
    app.db
        .execute(Statement::from_string(
            app.db.get_database_backend(),
            "UPDATE api_tokens SET last_used_at = last_used_at - INTERVAL '2 minutes' WHERE name = 'reader'".to_owned(),
        ))
        .await
        .expect("age the stamp");
    // The process remembers the token it just resolved (for a few seconds) with the stamp it
    // wrote; the minute that passed here did not pass for it, so forget the token as the
    // cache's TTL would have long before a real minute went by.
    berth_core::store::tokens::forget_cached(&token);
    let aged = stamp().await.expect("aged");
    assert_eq!(api.get("/api/v1/auth/me").await.status, StatusCode::OK);
    assert_ne!(stamp().await.as_deref(), Some(aged.as_str()), "a use after a minute is stamped");
}

/// Uses the token until the process answers it from memory. A lookup that raced with any change
/// forgotten meanwhile (another test's login, in this shared process) keeps nothing, so the
/// first use alone does not always suffice.
async fn use_until_cached(api: &Client, token: &str) {
    for _ in 0..20 {
        assert_eq!(api.get("/api/v1/sites").await.status, StatusCode::OK);
        if is_cached(token) {
            return;
        }
    }
    panic!("the token was never remembered");
}

/// The process remembers a token it resolved a moment ago (store::token_cache); revoking the
/// token, disabling its owner or deleting the owner's customer still refuses it at the very
/// next request, never a TTL later.
#[tokio::test]
async fn a_remembered_token_is_refused_at_once_when_revoked_disabled_or_deleted() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    // Revoked by its owner just after a use.
    let created = admin.post("/api/v1/tokens", &json!({"name": "hot"})).await;
    let (token, id) = (created.str("token"), created.str("id"));
    let api = Client::with_token(&app.base, &token);
    use_until_cached(&api, &token).await;
    assert_eq!(admin.delete(&format!("/api/v1/tokens/{id}")).await.status, StatusCode::NO_CONTENT);
    assert!(!is_cached(&token));
    api.get("/api/v1/auth/me").await.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(!is_cached(&token), "a refused token is not remembered");

    // Its owner disabled just after a use.
    let customer = app.customer(&admin, "hot@example.com", "starter").await;
    let portal = app.customer_user(&admin, &customer, "hot-user@example.com").await;
    let token = portal.post("/api/v1/tokens", &json!({"name": "portal"})).await.str("token");
    let api = Client::with_token(&app.base, &token);
    use_until_cached(&api, &token).await;
    let user_id =
        admin.get(&format!("/api/v1/customers/{customer}/users")).await.body[0]["id"].as_str().expect("id").to_owned();
    let res = admin.patch(&format!("/api/v1/customers/{customer}/users/{user_id}"), &json!({"disabled": true})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    api.get("/api/v1/sites").await.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");

    // Its owner's customer deleted just after a use (the user and the token go with it).
    let customer = app.customer(&admin, "gone@example.com", "starter").await;
    let portal = app.customer_user(&admin, &customer, "gone-user@example.com").await;
    let token = portal.post("/api/v1/tokens", &json!({"name": "portal"})).await.str("token");
    let api = Client::with_token(&app.base, &token);
    use_until_cached(&api, &token).await;
    assert_eq!(admin.delete(&format!("/api/v1/customers/{customer}")).await.status, StatusCode::NO_CONTENT);
    api.get("/api/v1/sites").await.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
}
