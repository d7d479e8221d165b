use reqwest::{Method, StatusCode};

use crate::support::TestApp;

/// Every route Berth serves. Adding a route means adding it here; the test then fails until
/// the OpenAPI document describes it.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/auth/me"),
    ("post", "/api/v1/auth/password"),
    ("post", "/api/v1/auth/set-password"),
    ("post", "/api/v1/auth/totp/enroll"),
    ("post", "/api/v1/auth/totp/confirm"),
    ("post", "/api/v1/auth/totp/disable"),
    ("get", "/api/v1/customers"),
    ("post", "/api/v1/customers"),
    ("get", "/api/v1/customers/{id}"),
    ("patch", "/api/v1/customers/{id}"),
    ("delete", "/api/v1/customers/{id}"),
    ("get", "/api/v1/customers/{id}/users"),
    ("post", "/api/v1/customers/{id}/users"),
    ("patch", "/api/v1/customers/{id}/users/{user_id}"),
    ("post", "/api/v1/customers/{id}/users/{user_id}/totp/reset"),
    ("get", "/api/v1/sites"),
    ("post", "/api/v1/sites"),
    ("get", "/api/v1/sites/{id}"),
    ("patch", "/api/v1/sites/{id}"),
    ("delete", "/api/v1/sites/{id}"),
    ("post", "/api/v1/sites/{id}/start"),
    ("post", "/api/v1/sites/{id}/stop"),
    ("post", "/api/v1/sites/{id}/restart"),
    ("get", "/api/v1/sites/{id}/logs"),
    ("get", "/api/v1/plans"),
    ("get", "/api/v1/tokens"),
    ("post", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/{id}"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/jobs"),
    ("get", "/api/v1/jobs/{id}"),
    ("post", "/api/v1/jobs/{id}/retry"),
    ("get", "/api/v1/flows"),
    ("get", "/api/v1/flows/{id}"),
    ("post", "/api/v1/flows/{id}/retry"),
    ("get", "/api/v1/openapi.json"),
    ("post", "/api/v1/webhooks/signup"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_is_served() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let doc = app.client().get("/api/v1/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["openapi"].as_str().expect("version").starts_with("3."));
    let paths = doc.body["paths"].as_object().expect("paths");

    for (method, path) in ROUTES {
        assert!(
            paths.get(*path).and_then(|p| p.get(*method)).is_some(),
            "{method} {path} is missing from openapi.json"
        );
    }
    let mut documented = 0;
    let mut operation_ids = std::collections::HashSet::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            documented += 1;
            assert!(
                ROUTES.contains(&(method.as_str(), path.as_str())),
                "{method} {path} is documented but not in ROUTES"
            );
            assert!(
                operation_ids.insert(op["operationId"].as_str().expect("operationId").to_owned()),
                "duplicate operationId"
            );
            // Served: the router answers with something other than "no such route".
            let concrete = path
                .replace("{id}", &uuid::Uuid::now_v7().to_string())
                .replace("{user_id}", &uuid::Uuid::now_v7().to_string());
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let res = admin.request(m, &concrete, None).await;
            assert!(
                res.status != StatusCode::METHOD_NOT_ALLOWED && res.body["detail"] != "no such API route",
                "{method} {path} is documented but not served: {}",
                res.text
            );
        }
    }
    assert_eq!(documented, ROUTES.len());
    // Problem responses are described.
    assert!(doc.body["components"]["schemas"]["Problem"].is_object());
}

