use std::process::Stdio;

use reqwest::StatusCode;

use crate::support::TestApp;

#[tokio::test]
async fn healthz_and_readyz() {
    let app = TestApp::spawn().await;
    let c = app.client();
    let h = c.get("/healthz").await;
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.body["status"], "ok");
    let r = c.get("/readyz").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["checks"]["database"], "ok");
    assert_eq!(r.body["checks"]["redis"], "ok");
}

/// A Redis of this test's own, so it can be stopped without touching the shared one.
#[tokio::test]
async fn readyz_names_the_failing_part() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    let mut redis = tokio::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server is installed by scripts/test.sh");
    let url = format!("redis://127.0.0.1:{port}/");
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(client) = redis::Client::open(url.as_str()) {
            if client.get_multiplexed_async_connection().await.is_ok() {
                ready = true;
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "private redis did not start");
    let app = TestApp::spawn_with(&[("BERTH_REDIS_URL", &url)]).await;
    assert_eq!(app.client().get("/readyz").await.status, StatusCode::OK);

    redis.kill().await.expect("stop redis");
    let r = app.client().get("/readyz").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.content_type(), "application/problem+json");
    assert_eq!(r.body["checks"]["redis"], "unreachable");
    assert_eq!(r.body["checks"]["database"], "ok");
    assert!(r.body["detail"].as_str().expect("detail").contains("redis"));
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let mut c = app.client();
    let generated = c.get("/healthz").await;
    let id = generated.headers.get("x-request-id").expect("generated id").to_str().expect("ascii").to_owned();
    assert_eq!(id.len(), 36);
    c.extra_headers.push(("x-request-id".into(), "edge-proxy-123".into()));
    let echoed = c.get("/healthz").await;
    assert_eq!(echoed.headers.get("x-request-id").expect("echo"), "edge-proxy-123");
    c.extra_headers = vec![("x-request-id".into(), "bad id with spaces{}".into())];
    let replaced = c.get("/healthz").await;
    assert_ne!(replaced.headers.get("x-request-id").expect("replaced"), "bad id with spaces{}");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    admin.get(&format!("/api/v1/sites/{}", uuid::Uuid::now_v7())).await;
    admin.get("/api/v1/sites").await;
    let m = app.client().get("/metrics").await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(
        m.text.contains(r#"berth_http_requests_total{method="GET",route="/api/v1/sites/{id}",status="404"} 1"#),
        "{}",
        m.text
    );
    assert!(m.text.contains(r#"berth_http_requests_total{method="GET",route="/api/v1/sites",status="200"} 1"#));
    assert!(m.text.contains(r#"berth_http_request_duration_seconds_bucket{method="POST",route="/api/v1/auth/login",status="200",le="+Inf"} 1"#));
}
