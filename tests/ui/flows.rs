//! An administrator finds a failed flow run (the dashboard, the flow list, its filters, the
//! customer's page), reads its steps on the timeline, retries it and sees it succeed; then
//! retries a dead job from the job list.

use std::time::{Duration, Instant};

use berth_core::flows::demo::{DemoFlow, DemoInput};
use berth_core::jobs::demo::Fail;
use berth_core::jobs::{enqueue_with, Options};
use fantoccini::Locator;
use uuid::Uuid;

use super::{Browser, Js, DEADLINE};
use crate::support::{Client, TestApp};

/// Polls the API until the run is in `state`, or fails the test after a deadline.
async fn wait_for_run(admin: &Client, id: Uuid, state: &str) {
    let started = Instant::now();
    loop {
        let res = admin.get(&format!("/api/v1/flows/{id}")).await;
        if res.body["state"] == state {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "flow run {id} never became {state}: {}", res.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_dead_job(admin: &Client, id: Uuid) {
    let started = Instant::now();
    loop {
        let res = admin.get(&format!("/api/v1/jobs/{id}")).await;
        if res.body["state"] == "dead" {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "job {id} never died: {}", res.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reloads `path` until the element `css` reads `expected` (the workers change the page
/// behind the browser's back, so the page itself never updates).
async fn reload_until(b: &Browser, path: &str, css: &str, expected: &str) {
    let started = Instant::now();
    loop {
        b.open(path).await;
        if let Ok(el) = b.client.find(Locator::Css(css)).await {
            if el.text().await.unwrap_or_default().trim() == expected {
                return;
            }
        }
        assert!(started.elapsed() < DEADLINE * 2, "{path}: {css} never read {expected:?}:\n{}", b.body_text().await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn flows_flow(js: Js) {
    let app = TestApp::spawn_with_workers(&[]).await;
    let admin = app.admin().await;
    let customer: Uuid = app.customer(&admin, "ops@fjord-ferries.example", "business").await.parse().expect("uuid");
    // Fails `work` on both of the run's attempts, so the run fails; a manual retry succeeds.
    let failing = DemoInput { fail_step: Some("work".into()), fail_attempts: 2, ..Default::default() };
    let run = berth_core::flows::start::<DemoFlow>(&app.db, &failing, Some(customer)).await.expect("start flow");
    let dead = enqueue_with(&app.db, &Fail { message: "disk full".into() }, Options::default())
        .await
        .expect("enqueue")
        .expect("inserted");
    wait_for_run(&admin, run.id, "failed").await;
    wait_for_dead_job(&admin, dead).await;

    let mut b = Browser::start(&app, "flows", js).await;
    b.sign_in_as_admin().await;
    b.assert_js_state().await;
    b.wait_for_text("Recent flow runs").await;
    let failed_rows = b.client.find_all(Locator::Css("tr.row--failed")).await.expect("rows");
    assert!(!failed_rows.is_empty(), "the dashboard highlights the failed run");
    b.snap("dashboard").await;

    b.follow_link("Flows").await;
    b.wait_for_text("Open a run to see its steps.").await;
    b.fill("kind", "demo").await;
    b.select("state", "failed").await;
    b.press("Filter").await;
    b.wait_for_text("Newest first.").await;
    let rows = b.client.find_all(Locator::Css("tbody tr")).await.expect("rows");
    assert_eq!(rows.len(), 1, "one failed demo run: {}", b.body_text().await);
    let row = rows[0].text().await.expect("row text");
    assert!(row.contains("demo") && row.contains("failed") && row.contains("work"), "{row}");
    assert!(row.contains("ops@fjord-ferries.example Ltd"), "the customer's name: {row}");
    b.snap("flows").await;

    b.follow_link("demo").await;
    b.wait_for_text("Steps").await;
    assert_eq!(b.path().await, format!("/admin/flows/{}", run.id));
    let steps = b.client.find_all(Locator::Css("ol.timeline > li")).await.expect("steps");
    let mut seen = Vec::new();
    for s in &steps {
        seen.push(s.text().await.expect("step text"));
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen[0].contains("prepare") && seen[0].contains("succeeded") && seen[0].contains("1 attempt"), "{seen:?}");
    assert!(seen[1].contains("work") && seen[1].contains("failed") && seen[1].contains("2 attempts"), "{seen:?}");
    assert!(seen[1].contains("demo failure of step `work`"), "the step's error is shown: {seen:?}");
    assert!(seen[2].contains("finish") && seen[2].contains("pending"), "{seen:?}");
    assert!(b.text_of(".code-block").await.contains("\"fail_step\": \"work\""), "the input, pretty-printed");
    b.snap("flow-detail").await;

    b.press("Retry").await;
    b.wait_for_text("Retry queued: the run resumes at step work.").await;
    b.snap("flow-retried").await;
    wait_for_run(&admin, run.id, "succeeded").await;
    let path = format!("/admin/flows/{}", run.id);
    reload_until(&b, &path, ".facts dd .badge", "succeeded").await;
    assert!(!b.exists("form[action$='/retry']").await, "a succeeded run offers no retry");
    b.snap("flow-succeeded").await;

    // The retry went through the store: audited as flow.retry.
    let audit = admin.get("/api/v1/audit?action=flow.retry").await;
    assert!(audit.text.contains(&run.id.to_string()), "{}", audit.text);

    // The customer's page lists its runs.
    b.open(&format!("/admin/customers/{customer}")).await;
    b.wait_for_text("Every flow run of this customer").await;
    assert!(b.exists(&format!("a[href='/admin/flows/{}']", run.id)).await, "{}", b.body_text().await);

    b.follow_link("Jobs").await;
    b.wait_for_text("demo.fail").await;
    // The failed run's driver job is dead too; the filter leaves only the demo job.
    b.fill("kind", "demo.fail").await;
    b.select("state", "dead").await;
    b.press("Filter").await;
    b.wait_for_text("disk full").await;
    b.snap("jobs").await;
    b.press("Retry").await;
    b.wait_for_text("Job demo.fail is queued again.").await;
    assert!(b.path().await.ends_with("/admin/jobs"), "back on the job list");
    let audit = admin.get("/api/v1/audit?action=job.retry").await;
    assert!(audit.text.contains(&dead.to_string()), "the job retry is audited: {}", audit.text);
    // It fails again at once (one attempt), which leaves it dead, not queued.
    wait_for_dead_job(&admin, dead).await;

    b.close().await;
    app.wait_for_idle_queue().await;
    app.stop().await;
}

#[tokio::test]
async fn admin_reads_and_retries_flow_runs_and_jobs_with_javascript() {
    flows_flow(Js::On).await;
}

#[tokio::test]
async fn admin_reads_and_retries_flow_runs_and_jobs_without_javascript() {
    flows_flow(Js::Off).await;
}
