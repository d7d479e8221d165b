//! GET /api/v1/jobs and /api/v1/flows: filters, tenant scoping (a customer user sees only their
//! customer's runs, 404 for others', admins all), and the admin-only, audited retry.

use std::time::Duration;

use berth_core::flows::demo::{DemoFlow, DemoInput};
use berth_core::jobs::demo::{Fail, Noop};
use berth_core::jobs::{enqueue, enqueue_with, Options};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{eventually, Worker};
use crate::support::{pending_jobs, TestApp};

const WITHIN: Duration = Duration::from_secs(60);

fn ids(res: &crate::support::Res) -> Vec<String> {
    res.body["items"].as_array().expect("items").iter().filter_map(|i| i["id"].as_str().map(str::to_owned)).collect()
}

#[tokio::test]
async fn jobs_and_flows_are_listed_filtered_scoped_and_retried_by_admins() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let c1: Uuid = app.customer(&admin, "one@example.com", "starter").await.parse().expect("uuid");
    let c2: Uuid = app.customer(&admin, "two@example.com", "starter").await.parse().expect("uuid");
    let u1 = app.customer_user(&admin, &c1.to_string(), "user-one@example.com").await;

    let for_c1 = |c| Options { customer_id: Some(c), ..Options::default() };
    let noop = enqueue_with(&app.db, &Noop {}, for_c1(c1)).await.expect("enqueue").expect("inserted");
    let dead = enqueue_with(&app.db, &Fail { message: "disk full".into() }, for_c1(c2))
        .await
        .expect("enqueue")
        .expect("inserted");
    let system = enqueue(&app.db, &Noop {}).await.expect("enqueue").expect("inserted");
    let ok_flow = berth_core::flows::start::<DemoFlow>(&app.db, &DemoInput::default(), Some(c1)).await.expect("flow");
    let failing = DemoInput { fail_step: Some("work".into()), fail_attempts: 2, ..Default::default() };
    let bad_flow = berth_core::flows::start::<DemoFlow>(&app.db, &failing, Some(c2)).await.expect("flow");

    let worker = Worker::start(&app.db, berth_workers::registry(), Duration::from_secs(5));
    eventually(WITHIN, "the jobs and flows to settle", || async {
        pending_jobs(&app.db).await.is_empty().then_some(())
    })
    .await;

    // Admin: everything, and each filter narrows it.
    let all = admin.get("/api/v1/jobs").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert_eq!(all.body["items"].as_array().expect("items").len(), 5, "3 jobs + 2 flow drivers: {}", all.text);
    assert_eq!(ids(&admin.get("/api/v1/jobs?kind=demo.fail").await), vec![dead.to_string()]);
    assert_eq!(ids(&admin.get("/api/v1/jobs?state=dead&kind=demo.fail").await), vec![dead.to_string()]);
    let c1_jobs = ids(&admin.get(&format!("/api/v1/jobs?customer_id={c1}&kind=demo.noop")).await);
    assert_eq!(c1_jobs, vec![noop.to_string()]);
    let flows_failed = admin.get("/api/v1/flows?state=failed").await;
    assert_eq!(ids(&flows_failed), vec![bad_flow.id.to_string()]);
    assert_eq!(flows_failed.body["items"][0]["current_step"], "work");
    assert_eq!(
        ids(&admin.get(&format!("/api/v1/flows?customer_id={c1}&kind=demo")).await),
        vec![ok_flow.id.to_string()]
    );
    admin.get("/api/v1/jobs?state=bogus").await.assert_problem(StatusCode::BAD_REQUEST, "bad-request");
    admin.get("/api/v1/flows?colour=red").await.assert_problem(StatusCode::BAD_REQUEST, "bad-request");
    let one = admin.get(&format!("/api/v1/jobs/{dead}")).await;
    assert_eq!((one.body["state"].as_str(), one.body["last_error"].as_str()), (Some("dead"), Some("disk full")));
    assert_eq!(one.body["payload"], json!({"message": "disk full"}), "admins see the payload");

    // The failed flow's page: its steps as a timeline, with attempts, durations and the error.
    let page = admin.get(&format!("/api/v1/flows/{}", bad_flow.id)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let steps = page.body["steps"].as_array().expect("steps");
    let summary: Vec<(String, String, i64)> = steps
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or("").to_owned(),
                s["state"].as_str().unwrap_or("").to_owned(),
                s["attempts"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("prepare".into(), "succeeded".into(), 1),
            ("work".into(), "failed".into(), 2),
            ("finish".into(), "pending".into(), 0)
        ]
    );
    assert!(steps[1]["error"].as_str().is_some_and(|e| e.contains("demo failure")), "{}", page.text);
    assert!(steps[0]["duration_ms"].as_i64().is_some());
    assert_eq!(steps[2]["started_at"], Value::Null);

    // A customer user: only their customer's jobs and flows; others' are not found.
    let mine = ids(&u1.get("/api/v1/jobs").await);
    assert_eq!(mine.len(), 2, "their no-op and their flow's driver: {mine:?}");
    assert!(mine.contains(&noop.to_string()) && !mine.contains(&system.to_string()));
    assert_eq!(ids(&u1.get(&format!("/api/v1/jobs?customer_id={c2}")).await), Vec::<String>::new());
    u1.get(&format!("/api/v1/jobs/{dead}")).await.assert_problem(StatusCode::NOT_FOUND, "not-found");
    u1.get(&format!("/api/v1/jobs/{system}")).await.assert_problem(StatusCode::NOT_FOUND, "not-found");
    assert_eq!(u1.get(&format!("/api/v1/jobs/{noop}")).await.body["payload"], Value::Null, "no payloads for customers");
    assert_eq!(ids(&u1.get("/api/v1/flows").await), vec![ok_flow.id.to_string()]);
    u1.get(&format!("/api/v1/flows/{}", bad_flow.id)).await.assert_problem(StatusCode::NOT_FOUND, "not-found");

    // Retry: admins only, only what failed, audited.
    u1.post(&format!("/api/v1/jobs/{noop}/retry"), &json!({})).await.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    u1.post(&format!("/api/v1/flows/{}/retry", ok_flow.id), &json!({}))
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    admin
        .post(&format!("/api/v1/jobs/{noop}/retry"), &json!({}))
        .await
        .assert_problem(StatusCode::CONFLICT, "conflict");
    admin
        .post(&format!("/api/v1/flows/{}/retry", ok_flow.id), &json!({}))
        .await
        .assert_problem(StatusCode::CONFLICT, "conflict");
    admin
        .post(&format!("/api/v1/jobs/{}/retry", Uuid::now_v7()), &json!({}))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");

    let retried = admin.post(&format!("/api/v1/flows/{}/retry", bad_flow.id), &json!({})).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.text);
    assert_eq!(retried.body["state"], "running");
    admin
        .post(&format!("/api/v1/flows/{}/retry", bad_flow.id), &json!({}))
        .await
        .assert_problem(StatusCode::CONFLICT, "conflict");
    let done = eventually(WITHIN, "the retried flow to resume at `work` and succeed", || async {
        let res = admin.get(&format!("/api/v1/flows/{}", bad_flow.id)).await;
        (res.body["state"] == "succeeded").then_some(res)
    })
    .await;
    let steps = done.body["steps"].as_array().expect("steps");
    assert_eq!(steps[0]["attempts"], 1, "the succeeded step did not run again");
    assert_eq!(steps[1]["attempts"], 3);
    assert_eq!(steps[1]["error"], Value::Null);

    let res = admin.post(&format!("/api/v1/jobs/{dead}/retry"), &json!({})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!((res.body["state"].as_str(), res.body["attempts"].as_i64()), (Some("queued"), Some(0)));
    eventually(WITHIN, "the queue to drain", || async { pending_jobs(&app.db).await.is_empty().then_some(()) }).await;
    worker.stop().await;

    let audit = admin.get("/api/v1/audit?action=job.retry").await;
    assert_eq!(audit.body["items"][0]["target_id"], dead.to_string());
    assert_eq!(audit.body["items"][0]["customer_id"], c2.to_string());
    let audit = admin.get("/api/v1/audit?action=flow.retry").await;
    assert_eq!(audit.body["items"][0]["target_id"], bad_flow.id.to_string());
}
