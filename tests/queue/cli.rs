//! `berth job enqueue NAME`: an operator runs by hand what a schedule would enqueue; the
//! workers inside `berth serve` run it, and /metrics shows the queue.

use std::time::Duration;

use berth_core::entities::jobs::{self, JobState};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::eventually;
use crate::support::TestApp;

fn berth(app: &TestApp, args: &[&str]) -> std::process::Output {
    let url = app.config.server.database_url.as_ref().expect("tests use PostgreSQL").expose().to_owned();
    let key = app.config.server.secret_key.as_ref().expect("tests set a key").expose().to_owned();
    std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BERTH_DATABASE_URL", url)
        .env("BERTH_SECRET_KEY", key)
        .env("BERTH_LOG", "warn")
        .env("BERTH_DOCKER_HOST", "off")
        .env("BERTH_INGRESS_MODE", "off")
        .output()
        .expect("run berth")
}

#[tokio::test]
async fn a_job_enqueued_by_hand_runs_in_the_servers_workers() {
    let app = TestApp::spawn_with_workers(&[]).await;
    let out = berth(&app, &["job", "enqueue", "demo.noop"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Enqueued demo.noop as job "));

    let done = eventually(Duration::from_secs(30), "the server's workers to run it", || async {
        let j = jobs::Entity::find().filter(jobs::Column::Kind.eq("demo.noop")).one(&app.db).await.expect("query");
        j.filter(|j| j.state == JobState::Done)
    })
    .await;
    assert_eq!(done.attempts, 1);

    let admin = app.admin().await;
    let audit = admin.get("/api/v1/audit?action=job.enqueue").await;
    assert_eq!(audit.body["items"][0]["actor"], "cli");
    assert_eq!(audit.body["items"][0]["target_id"], done.id.to_string());

    let metrics = app.client().get("/metrics").await.text;
    assert!(metrics.contains("berth_job_duration_seconds_count{kind=\"demo.noop\",outcome=\"done\"} 1"), "{metrics}");

    // Bad input: one line on stderr, a failing exit, nothing enqueued.
    for args in
        [&["job", "enqueue", "no.such.job"][..], &["job", "enqueue", "demo.sleep", "--payload", "{\"ms\":\"x\"}"]]
    {
        let out = berth(&app, args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: "), "{err}");
    }
    let count = jobs::Entity::find().all(&app.db).await.expect("query").len();
    assert_eq!(count, 1);
}

/// `berth worker` serves the process's one registry on BERTH_WORKER_METRICS_LISTEN, guarded by
/// BERTH_METRICS_TOKEN like the server's: the job it ran shows in the queue's metrics there.
#[tokio::test]
async fn berth_worker_serves_its_metrics_when_asked() {
    let app = TestApp::spawn().await;
    let port = crate::support::services::free_port();
    let listen = format!("127.0.0.1:{port}");
    const TOKEN: &str = "worker-metrics-token-0123456789";
    let worker = super::ChildWorker::spawn_with(
        &app,
        30,
        &[("BERTH_WORKER_METRICS_LISTEN", &listen), ("BERTH_METRICS_TOKEN", TOKEN)],
    );
    let out = berth(&app, &["job", "enqueue", "demo.noop"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eventually(Duration::from_secs(30), "the worker to run the job", || async {
        let j = jobs::Entity::find().filter(jobs::Column::Kind.eq("demo.noop")).one(&app.db).await.expect("query");
        j.filter(|j| j.state == JobState::Done)
    })
    .await;
    let http = reqwest::Client::new();
    // Guarded like the server's: without the token, 401.
    let refused = eventually(Duration::from_secs(10), "the worker's /metrics to answer", || async {
        http.get(format!("http://{listen}/metrics")).send().await.ok()
    })
    .await;
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);
    let metrics = eventually(Duration::from_secs(10), "the worker's /metrics", || async {
        let res = http.get(format!("http://{listen}/metrics")).bearer_auth(TOKEN).send().await.ok()?;
        let text = res.text().await.ok()?;
        text.contains("berth_job_duration_seconds_count{kind=\"demo.noop\",outcome=\"done\"} 1").then_some(text)
    })
    .await;
    assert!(metrics.contains("berth_job_start_latency_seconds_count{queue=\"default\"} 1"), "{metrics}");
    drop(worker);
}
