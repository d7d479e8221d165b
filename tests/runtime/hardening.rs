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

/// Issue 9 item 11: an image without a non-root `USER` (here `USER 0`, as root as none) runs
/// as 65534 unless an admin allows root for the site; a customer user cannot allow it.
#[tokio::test]
async fn sites_run_as_non_root_unless_an_admin_allows_root() {
    use crate::support::runtime::TestImage;
    let app = TestApp::spawn_runtime().await;
    // site-static's httpd straight away (as root, start.sh could not write to the volume with
    // every capability dropped), no health check: what matters is who runs it.
    let image = TestImage::derived(
        app.scope(),
        "root",
        bollard::models::ContainerConfig {
            user: Some("0".into()),
            entrypoint: Some(["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/srv/www"].map(String::from).into()),
            healthcheck: Some(bollard::models::HealthConfig { test: Some(vec!["NONE".into()]), ..Default::default() }),
            ..Default::default()
        },
    )
    .await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "root@example.com", "business").await;
    let user = app.customer_user(&admin, &c, "owner@root.test").await;
    let res = admin
        .post(
            "/api/v1/sites",
            &json!({"customer_id": c, "name": "rooted", "image": image.reference, "domains": ["rooted.root.test"]}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let id = res.str("id");
    assert_eq!(res.body["allow_root"], false, "{}", res.text);
    let site = app.wait_running(&admin, &id).await;
    let name = app.scope().names.container(id.parse().expect("uuid"));

    // Not root: the container's user, and the process as the kernel sees it.
    let config = app.inspect(&name).await.config.expect("config");
    assert_eq!(config.user.as_deref(), Some("65534:65534"), "the image says root; the site does not get it");
    // Positive control: exec works in this container, so the next answer means something.
    assert_eq!(app.exec(&name, &["/bin/busybox", "echo", "exec-works"]).await, (0, "exec-works\n".into()));
    let (code, uid) = app.exec(&name, &["/bin/busybox", "id", "-u"]).await;
    assert_eq!((code, uid.trim()), (0, "65534"), "uid inside the container");
    let page = admin.get(&format!("/admin/sites/{id}")).await;
    assert!(page.text.contains("a non-root user"), "{}", page.text);

    // A customer user cannot allow root, not even on their own site; nothing changes.
    let refused = user.patch(&format!("/api/v1/sites/{id}"), &json!({"allow_root": true})).await;
    refused.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    assert!(refused.body["detail"].as_str().unwrap_or("").contains("administrator"), "{}", refused.text);
    let refused = user.patch(&format!("/api/v1/sites/{id}"), &json!({"allow_root": false, "env": {"A": "1"}})).await;
    refused.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(admin.get(&format!("/api/v1/sites/{id}")).await.body["allow_root"], false);

    // An admin allows it: the container is replaced and runs as the image's user, root.
    let res = admin.patch(&format!("/api/v1/sites/{id}"), &json!({"allow_root": true})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["allow_root"], true, "{}", res.text);
    let old = site["container_id"].as_str().expect("container").to_owned();
    app.wait_site(&admin, &id, Duration::from_secs(60), |s| {
        s["status"] == "running" && s["container_id"].as_str().is_some_and(|c| c != old)
    })
    .await;
    let config = app.inspect(&name).await.config.expect("config");
    assert_eq!(config.user.as_deref(), Some("0"), "the image's own user");
    assert_eq!(app.exec(&name, &["/bin/busybox", "echo", "exec-works"]).await, (0, "exec-works\n".into()));
    let (code, uid) = app.exec(&name, &["/bin/busybox", "id", "-u"]).await;
    assert_eq!((code, uid.trim()), (0, "0"));
    let audit = admin.get("/api/v1/audit?action=site.update").await;
    assert!(audit.text.contains("allow_root"), "{}", audit.text);
    let page = admin.get(&format!("/admin/sites/{id}")).await;
    assert!(page.text.contains("allowed by an administrator"), "{}", page.text);
    app.finish().await;
    drop(image);
}
