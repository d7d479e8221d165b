//! Remediation end to end (`BERTH_ALERTS_RESTART_AFTER_FAILED_CHECKS`): a site whose container
//! is there but does not serve (frozen: `docker pause`, which the reconciler cannot undo) fires
//! its down alert, is brought back once through `berth_ops` by the alerts, answers again and
//! resolves; the incident's timeline says what was done.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use super::alerts::{diagnose, kinds, wait_json};
use super::rules::set_rule;
use crate::support::runtime::engine;
use crate::support::TestApp;

#[tokio::test]
async fn a_site_that_keeps_failing_its_checks_is_restarted_once_and_resolves() {
    let app = TestApp::spawn_runtime_with(&[
        ("BERTH_METRICS_INTERVAL_SECONDS", "1"),
        ("BERTH_UPTIME_INTERVAL_SECONDS", "1"),
        ("BERTH_ALERTS_INTERVAL_SECONDS", "1"),
        ("BERTH_ALERTS_RESOLVE_HOLD_SECONDS", "2"),
        ("BERTH_ALERTS_RESTART_AFTER_FAILED_CHECKS", "3"),
    ])
    .await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "remediate@example.com", "business").await;
    let site = app.running_site(&admin, &customer, "hung", "hung.alerts.test").await;
    let id = site["id"].as_str().expect("id").to_owned();
    app.wait_ingress("hung.alerts.test", 200).await;
    set_rule(&admin, "down", json!({"warning": 2, "critical": 600})).await;
    wait_json(&admin, &format!("/api/v1/sites/{id}/metrics?series=up"), Duration::from_secs(30), |b| {
        b["series"]["up"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;

    let name = app.scope().names.container(id.parse().expect("uuid"));
    engine().client().pause_container(&name).await.expect("docker pause");
    // Down, then remediated by the alerts (nobody unpauses it here), then answering: resolved.
    let deadline = Instant::now() + Duration::from_secs(90);
    let incident_id = loop {
        let res = admin.get("/api/v1/incidents").await;
        if let Some(id) = res.body["items"].as_array().and_then(|a| a.first()).and_then(|i| i["id"].as_str()) {
            break id.to_owned();
        }
        assert!(Instant::now() < deadline, "no incident: {}", diagnose(&app).await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let path = format!("/api/v1/incidents/{incident_id}");
    let incident = wait_json(&admin, &path, Duration::from_secs(90), |b| b["status"] == "resolved").await;
    assert_eq!(incident["metric"], "down", "{incident}");
    assert_eq!(kinds(&incident), ["fired", "remediated", "resolved"], "{incident}");
    let remediated = incident["events"][1]["detail"].as_str().expect("detail").to_owned();
    assert!(remediated.starts_with("restarted after "), "{remediated}");
    let state = app.inspect(&name).await.state.expect("state");
    assert_eq!((state.running, state.paused), (Some(true), Some(false)), "the restart unfroze it");
    app.wait_ingress("hung.alerts.test", 200).await;

    // Exactly one restart was ever queued for the site, and it is audited as the alerts'.
    let count = |sql: &str| {
        let sql = sql.to_owned();
        async {
            let row = app
                .db
                .query_one(Statement::from_string(app.db.get_database_backend(), sql))
                .await
                .expect("query")
                .expect("row");
            row.try_get::<i64>("", "n").expect("n")
        }
    };
    assert_eq!(count("SELECT COUNT(*) AS n FROM jobs WHERE kind = 'alerts.remediate'").await, 1);
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'site.restart' AND actor = 'alerts'").await,
        1,
        "{}",
        diagnose(&app).await
    );
    app.wait_for_idle_queue().await;
    app.finish().await;
}
