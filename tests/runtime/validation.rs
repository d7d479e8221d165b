//! Metacharacters never reach Docker or nginx: refused at the API edge with 422.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestApp;

const BAD: &[&str] = &["a;b", "$(reboot)", "`id`", "a\nb", "a\"b", "a'b", "{a}", "../etc", "a b", "a$b"];

#[tokio::test]
async fn metacharacters_in_names_and_domains_are_refused() {
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "meta@example.com", "pro").await;
    for bad in BAD {
        let res = admin.post("/api/v1/sites", &json!({"customer_id": c, "name": bad})).await;
        res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
        assert!(res.error_fields().contains(&"name".to_owned()), "{bad:?}: {}", res.text);
        let domain = format!("x{bad}.example.com");
        let res = admin.post("/api/v1/sites", &json!({"customer_id": c, "name": "ok", "domains": [domain]})).await;
        res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
        let res = admin
            .post("/api/v1/sites", &json!({"customer_id": c, "name": "ok", "env": {format!("K{bad}"): "v"}}))
            .await;
        res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
        let res =
            admin.post("/api/v1/sites", &json!({"customer_id": c, "name": "ok", "image": format!("img{bad}")})).await;
        res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    }
    assert_eq!(admin.get("/api/v1/sites").await.body["items"].as_array().map_or(0, Vec::len), 0);
    // Give the reconciler a cycle: nothing reached Docker, and nginx holds no server for them.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(app.containers().await.is_empty());
    let conf = std::fs::read_to_string(app.scope_ingress_sites()).unwrap_or_default();
    assert!(!conf.contains("server_name x"), "{conf}");
    app.finish().await;
}
