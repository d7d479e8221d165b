//! Creating a site: a hardened container on the customer's network, served by nginx by Host.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::assert_hardened;
use crate::support::TestApp;

/// Business plan: 512 MB, 1000 millicores, 256 PIDs (m0002's default).
const BUSINESS: (i64, i64, i64) = (512, 1000, 256);

#[tokio::test]
async fn a_new_site_runs_hardened_and_answers_through_nginx() {
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "hardened@example.com", "business").await;
    let site = app.running_site(&admin, &c, "shop", "shop.hardened.test").await;
    assert_hardened(&app, &site, BUSINESS).await;
    assert!(site["health"].as_str().is_some(), "{site}");

    // The page names the site, through nginx, by Host header; with the security headers.
    let page = app.wait_ingress("shop.hardened.test", 200).await;
    assert!(page.contains("<h1>shop</h1>"), "{page}");
    assert!(page.to_ascii_lowercase().contains("x-content-type-options: nosniff"), "{page}");
    assert!(page.to_ascii_lowercase().contains("x-frame-options: sameorigin"), "{page}");
    // Unknown hosts get Berth's 404 page.
    let (status, body) = app.through_ingress("nobody.hardened.test").await;
    assert_eq!(status, 404);
    assert!(body.contains("No site here"), "{body}");

    // Logs: httpd logged the request above; tail and follow (SSE) both show it.
    let id = site["id"].as_str().expect("id");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let logs = admin.get(&format!("/api/v1/sites/{id}/logs?tail=50")).await;
        assert_eq!(logs.status, StatusCode::OK, "{}", logs.text);
        if logs.text.contains("response:200") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no request line in the logs: {}", logs.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let bad = admin.get(&format!("/api/v1/sites/{id}/logs?tail=0")).await;
    bad.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let sse =
        admin.http.get(format!("{}/api/v1/sites/{id}/logs?tail=5&follow=true", app.base)).send().await.expect("sse");
    assert_eq!(sse.headers()["content-type"], "text/event-stream");
    let mut sse = sse;
    let first = tokio::time::timeout(Duration::from_secs(10), sse.chunk())
        .await
        .expect("an event")
        .expect("chunk")
        .expect("bytes");
    let text = String::from_utf8_lossy(&first);
    assert!(text.contains("event: log"), "{text}");
    assert!(text.contains("response:200"), "{text}");
    drop(sse);

    // /readyz checks Docker; /metrics carries the reconciler's counters.
    let ready = app.client().get("/readyz").await;
    assert_eq!(ready.body["checks"]["docker"], "ok", "{}", ready.text);
    let metrics = app.client().get("/metrics").await;
    assert!(metrics.text.contains("berth_reconciler_passes_total"), "{}", metrics.text);

    // Restart is audited and leaves the site running.
    let res = admin.post(&format!("/api/v1/sites/{id}/restart"), &json!({})).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    let audit = admin.get("/api/v1/audit?action=site.restart").await;
    assert!(audit.text.contains("site.restart"), "{}", audit.text);
    app.wait_running(&admin, id).await;
    app.finish().await;
}

#[tokio::test]
async fn a_missing_image_is_a_failed_site_with_its_reason() {
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "missing@example.com", "business").await;
    let res = admin
        .post("/api/v1/sites", &json!({"customer_id": c, "name": "ghost", "image": "berth-test/not-here:1"}))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let id = res.str("id");
    let site = app.wait_site(&admin, &id, Duration::from_secs(30), |s| s["status"] == "failed").await;
    assert!(site["status_reason"].as_str().expect("reason").contains("not present"), "{site}");
    assert!(app.containers().await.is_empty(), "no container for a missing image");
    app.finish().await;
}
