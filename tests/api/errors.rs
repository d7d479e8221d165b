//! Every error class is RFC 7807 problem+json, and bad input never yields a 500.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn each_error_class_is_problem_json() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // 400 malformed JSON
    admin
        .raw(Method::POST, "/api/v1/customers", Some("application/json"), b"{\"email\": ".to_vec())
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "bad-request");
    admin
        .raw(Method::POST, "/api/v1/customers", Some("application/json"), b"{} trailing".to_vec())
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "bad-request");
    // 415
    admin
        .raw(Method::POST, "/api/v1/customers", Some("text/plain"), b"{}".to_vec())
        .await
        .assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");
    admin
        .raw(Method::POST, "/api/v1/customers", None, b"{}".to_vec())
        .await
        .assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");
    // 422: wrong types, missing and unknown fields (a caller cannot set ids or statuses)
    let res = admin.post("/api/v1/customers", &json!({"email": 42, "company_name": "X", "plan": "pro"})).await;
    assert_eq!(res.error_fields(), ["email"]);
    let res = admin.post("/api/v1/customers", &json!({"company_name": "X", "plan": "pro"})).await;
    assert_eq!(res.error_fields(), ["email"]);
    let res = admin
        .post("/api/v1/customers", &json!({"id": "x", "email": "a@b.example", "company_name": "X", "plan": "pro"}))
        .await;
    res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(res.error_fields(), ["id"]);
    // 401
    app.client().get("/api/v1/customers").await.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    // 404: unknown object, malformed id, unknown route
    admin
        .get(&format!("/api/v1/customers/{}", uuid::Uuid::now_v7()))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    admin.get("/api/v1/customers/not-a-uuid").await.assert_problem(StatusCode::NOT_FOUND, "not-found");
    admin.get("/api/v1/no-such-thing").await.assert_problem(StatusCode::NOT_FOUND, "not-found");
    // 405
    admin
        .request(Method::PUT, "/api/v1/customers", None)
        .await
        .assert_problem(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed");
    // 413
    let big = format!("{{\"email\":\"{}\"}}", "a".repeat(2 * 1024 * 1024));
    admin
        .raw(Method::POST, "/api/v1/customers", Some("application/json"), big.into_bytes())
        .await
        .assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large");
    // 409 and 429 are covered with their features (customers, auth).
}

#[tokio::test]
async fn garbage_never_causes_a_server_error() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "fuzz@example.com", "pro").await;
    let site = admin.post("/api/v1/sites", &json!({"customer_id": c, "name": "fuzz"})).await.str("id");
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"string\"".to_vec(),
        b"{\"a\":".to_vec(),
        vec![0xff, 0xfe, 0x00],
        b"{\"email\":\"\\u0000@x.example\",\"company_name\":\"\\u0000\",\"plan\":\"\\u0000\"}".to_vec(),
        json!({"name": "x".repeat(10_000), "domains": ["a".repeat(10_000)], "env": {"K": "v".repeat(10_000)}})
            .to_string()
            .into_bytes(),
        json!({"name": 1, "domains": "not-a-list", "env": [1, 2]}).to_string().into_bytes(),
        json!({"customer_id": "not-a-uuid", "name": "ok"}).to_string().into_bytes(),
        json!({"desired_state": "exploded", "disabled": "yes"}).to_string().into_bytes(),
        json!({"domains": ["xn--", "xn--zz", "a..b", ".", "é.", "\u{202e}evil.example"]}).to_string().into_bytes(),
        json!({"token": "' OR 1=1 --", "password": "x"}).to_string().into_bytes(),
        json!({"email": "a@b.example", "password": "x".repeat(100_000)}).to_string().into_bytes(),
    ];
    let targets = [
        (Method::POST, "/api/v1/customers".to_owned()),
        (Method::PATCH, format!("/api/v1/customers/{c}")),
        (Method::POST, format!("/api/v1/customers/{c}/users")),
        (Method::POST, "/api/v1/sites".to_owned()),
        (Method::PATCH, format!("/api/v1/sites/{site}")),
        (Method::POST, "/api/v1/tokens".to_owned()),
        (Method::POST, "/api/v1/auth/set-password".to_owned()),
        (Method::POST, "/api/v1/auth/totp/confirm".to_owned()),
        (Method::POST, "/api/v1/auth/password".to_owned()),
        (Method::POST, "/api/v1/auth/login".to_owned()),
    ];
    for (method, path) in &targets {
        for body in &bodies {
            let res = admin.raw(method.clone(), path, Some("application/json"), body.clone()).await;
            assert!(
                res.status.is_client_error() || res.status.is_success(),
                "{method} {path} with {:?}: {} {}",
                String::from_utf8_lossy(body),
                res.status,
                res.text
            );
            if res.status.is_client_error() {
                assert_eq!(res.content_type(), "application/problem+json", "{method} {path}");
            }
        }
    }
    // The site and customer are intact.
    assert_eq!(admin.get(&format!("/api/v1/sites/{site}")).await.body["name"], "fuzz");
}
