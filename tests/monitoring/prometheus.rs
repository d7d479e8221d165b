//! Debian's Prometheus scrapes Berth with the bearer token (as docker/prometheus.yml does) and
//! a site's memory series comes back through Prometheus's query API; `promtool check metrics`
//! accepts the exposition; without the token `/metrics` is refused.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::support::services::free_port;
use crate::support::TestApp;

const TOKEN: &str = "metrics-token-0123456789abcdef";

#[tokio::test]
async fn prometheus_scrapes_site_series_with_the_token() {
    let app =
        TestApp::spawn_runtime_with(&[("BERTH_METRICS_INTERVAL_SECONDS", "1"), ("BERTH_METRICS_TOKEN", TOKEN)]).await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "scraped@example.com", "business").await;
    let site = app.running_site(&admin, &customer, "scraped", "scraped.metrics.test").await;
    let site_id = site["id"].as_str().expect("id").to_owned();

    // Without the token, even from loopback: 401 problem+json. With it: the exposition.
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", app.base);
    let refused = http.get(&url).send().await.expect("request");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    let wrong = http.get(&url).bearer_auth("wrong-token-wrong-token").send().await.expect("request");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    // Prometheus, on loopback, with a scrape configuration like docker/prometheus.yml's.
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: berth\n    metrics_path: /metrics\n    \
         authorization:\n      credentials: {TOKEN}\n    static_configs:\n      - targets: ['{}']\n",
        app.addr
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).expect("write config");
    let mut prometheus = tokio::process::Command::new("prometheus")
        .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start Debian's prometheus (scripts/test.sh installs it)");

    let query = format!("berth_site_memory_bytes{{site=\"{site_id}\"}}");
    let deadline = Instant::now() + Duration::from_secs(90);
    let value = loop {
        let res =
            http.get(format!("http://127.0.0.1:{port}/api/v1/query")).query(&[("query", query.as_str())]).send().await;
        if let Ok(res) = res {
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            let result = &body["data"]["result"][0];
            if let Some(v) = result["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()) {
                assert_eq!(result["metric"]["customer"], customer.as_str());
                assert_eq!(result["metric"]["domain"], "scraped.metrics.test");
                assert_eq!(result["metric"]["job"], "berth");
                break v;
            }
        }
        assert!(Instant::now() < deadline, "Prometheus never returned {query}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(value > 0.0, "the site's container uses memory: {value}");

    // promtool accepts the exposition as Prometheus would read it.
    let text = http.get(&url).bearer_auth(TOKEN).send().await.expect("request").text().await.expect("text");
    assert!(text.contains("berth_http_requests_total") && text.contains("berth_site_cpu_percent"), "{text}");
    let mut promtool = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = promtool.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).await.expect("write exposition");
    }
    let out = promtool.wait_with_output().await.expect("promtool output");
    assert!(
        out.status.success(),
        "promtool check metrics failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = prometheus.kill().await;
    app.finish().await;
}
