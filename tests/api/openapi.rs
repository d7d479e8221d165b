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
    ("get", "/api/v1/sites/{id}/metrics"),
    ("get", "/api/v1/sites/{id}/backup-policy"),
    ("put", "/api/v1/sites/{id}/backup-policy"),
    ("get", "/api/v1/plans"),
    ("patch", "/api/v1/plans/{id}"),
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
    ("get", "/api/v1/alerts"),
    ("get", "/api/v1/incidents"),
    ("get", "/api/v1/incidents/{id}"),
    ("post", "/api/v1/incidents/{id}/acknowledge"),
    ("get", "/api/v1/notification-channels"),
    ("post", "/api/v1/notification-channels"),
    ("delete", "/api/v1/notification-channels/{id}"),
    ("post", "/api/v1/notification-channels/{id}/test"),
    ("get", "/api/v1/alert-rules"),
    ("post", "/api/v1/alert-rules"),
    ("patch", "/api/v1/alert-rules/{id}"),
    ("delete", "/api/v1/alert-rules/{id}"),
    ("get", "/api/v1/alert-silences"),
    ("post", "/api/v1/alert-silences"),
    ("delete", "/api/v1/alert-silences/{id}"),
    ("get", "/api/v1/sites/{id}/backups"),
    ("post", "/api/v1/sites/{id}/backups"),
    ("get", "/api/v1/sites/{id}/backups/{backup_id}/download"),
    ("get", "/api/v1/backup-checks"),
    ("post", "/api/v1/sites/{id}/backups/{backup_id}/restore"),
    ("get", "/api/v1/backup-drills"),
    ("post", "/api/v1/backup-drills"),
    ("get", "/api/v1/sites/{id}/volumes"),
    ("delete", "/api/v1/sites/{id}/volumes/{name}"),
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
                .replace("{user_id}", &uuid::Uuid::now_v7().to_string())
                .replace("{backup_id}", &uuid::Uuid::now_v7().to_string());
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

/// The served document is valid OpenAPI 3.1 by an independent validator
/// (openapi-spec-validator, installed by scripts/test.sh), every `{param}` of a path is declared
/// `in: path` and nothing else is, every operation declares its security, and every declared
/// error answer is problem+json.
#[tokio::test]
async fn the_document_validates_and_declares_parameters_security_and_errors() {
    let app = TestApp::spawn().await;
    let res = reqwest::get(format!("{}/api/v1/openapi.json", app.base)).await.expect("GET openapi.json");
    let text = res.text().await.expect("body");
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), &text).expect("write the document");
    let out = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(file.path())
        .output()
        .expect("python3 runs (scripts/test.sh installs openapi-spec-validator)");
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"));
    let schemes = doc["components"]["securitySchemes"].as_object().expect("security schemes");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["in"], "cookie");
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let in_path: std::collections::BTreeSet<&str> =
            path.split('{').skip(1).filter_map(|rest| rest.split_once('}').map(|(name, _)| name)).collect();
        for (method, op) in item.as_object().expect("path item") {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let declared: std::collections::BTreeSet<&str> = params
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().expect("parameter name"))
                .collect();
            assert_eq!(declared, in_path, "{method} {path}: path parameters declared vs. in the path");
            for p in &params {
                if p["in"] == "query" {
                    let name = p["name"].as_str().expect("name");
                    assert!(!in_path.contains(name), "{method} {path}: query parameter {name} is in the path");
                }
            }
            let security = op["security"].as_array().unwrap_or_else(|| panic!("{method} {path} declares no security"));
            for requirement in security {
                for scheme in requirement.as_object().expect("requirement").keys() {
                    assert!(schemes.contains_key(scheme), "{method} {path}: unknown scheme {scheme}");
                }
            }
            for (status, response) in op["responses"].as_object().expect("responses") {
                let response = match response["$ref"].as_str() {
                    Some(r) => {
                        let name = r.rsplit('/').next().expect("ref name");
                        &doc["components"]["responses"][name]
                    }
                    None => response,
                };
                if status.starts_with('4') || status.starts_with('5') {
                    if let Some(content) = response["content"].as_object() {
                        assert!(
                            content.keys().all(|k| k == "application/problem+json"),
                            "{method} {path} {status}: errors are problem+json, not {:?}",
                            content.keys().collect::<Vec<_>>()
                        );
                    }
                }
            }
            if path.starts_with("/api/v1/") && path != "/api/v1/openapi.json" {
                let responses = op["responses"].as_object().expect("responses");
                if op.get("requestBody").is_some() {
                    for status in ["400", "415", "422"] {
                        assert!(responses.contains_key(status), "{method} {path} does not document {status}");
                    }
                }
                if !security.is_empty() {
                    assert!(responses.contains_key("401"), "{method} {path} does not document 401");
                }
            }
        }
    }
    // The second factor is changed by a signed-in person with the password, never by a token.
    assert_eq!(doc["paths"]["/api/v1/auth/totp/enroll"]["post"]["security"], serde_json::json!([{"session": []}]));
    assert_eq!(doc["paths"]["/api/v1/auth/login"]["post"]["security"], serde_json::json!([]));
    assert_eq!(doc["paths"]["/api/v1/sites"]["get"]["security"], serde_json::json!([{"bearer": []}, {"session": []}]));
    app.stop().await;
}
