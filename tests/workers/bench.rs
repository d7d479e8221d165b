//! Onboarding benchmark (issue 5): time from the signed signup webhook to the new site's first
//! 200 through nginx, over 50 signups one after another. Run with
//! `bash scripts/test.sh -p berth-server --test e2e -- --ignored --nocapture workers::bench`;
//! results and machine in docs/benchmarks.md. Not a timed assertion: it only reports.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::runtime::bench::report;
use crate::support::TestApp;

const SECRET: &str = "whsec-bench-0123456789abcdef";

#[tokio::test]
#[ignore = "benchmark: run with --ignored --nocapture (see docs/benchmarks.md)"]
async fn bench_webhook_to_site_serving() {
    // Defaults for the edges (no DNS provider, mail to the outbox, self-signed certificates):
    // what is measured is Berth's own path — queue, flow, container, ingress.
    let app =
        TestApp::spawn_runtime_with(&[("BERTH_WEBHOOK_SECRET", SECRET), ("BERTH_BASE_DOMAIN", "bench.test")]).await;
    let mut samples = Vec::new();
    for i in 0..50 {
        let host = format!("s{i}.bench.test");
        let body = json!({"id": format!("evt_bench_{i}"), "email": format!("owner{i}@bench.example"), "company_name": "Bench", "plan": "starter", "subdomain": format!("s{i}")});
        let started = Instant::now();
        let res = app.signup_webhook(SECRET, &body).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if app.through_ingress(&host).await.0 == 200 {
                samples.push(started.elapsed());
                break;
            }
            if Instant::now() > deadline {
                let admin = app.admin().await;
                let run = admin.get(&format!("/api/v1/flows/{}", res.str("flow_id"))).await;
                let site = admin.get(&format!("/api/v1/sites/{}", res.str("site_id"))).await;
                panic!("{host} never answered; flow: {}; site: {}", run.text, site.text);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    report("signup webhook -> site serving through nginx", samples);
    app.wait_for_idle_queue().await;
    app.finish().await;
}
