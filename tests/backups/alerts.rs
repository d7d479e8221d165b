//! A failed backup fires the monitoring alert through the real rule and state machine: one
//! e-mail to the owner's channel (a real SMTP sink) naming the site, the site's container still
//! running (the same container, never restarted), and a resolved notice once a backup succeeds.
//! The fault is real: the repository's `config` file is damaged, so the repository does not open.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{back_up, backups, volume_dir, write_files};
use crate::support::services::SmtpSink;
use crate::support::{Client, TestApp};

const HOST: &str = "ledger.backup-alerts.test";

/// Polls the owner's alerts until the site's `backup` alert is in `state`.
async fn backup_alert(client: &Client, site: &str, state: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let res = client.get("/api/v1/alerts").await;
        let found = res.body["items"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["site_id"] == site && x["metric"] == "backup" && x["state"] == state))
            .cloned();
        if let Some(alert) = found {
            return alert;
        }
        assert!(Instant::now() < deadline, "no {state} backup alert within {within:?}: {}", res.text);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_failed_backup_pages_once_the_site_keeps_running_and_a_good_one_resolves_it() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_runtime_with(&[
        ("BERTH_SMTP_URL", &sink.url),
        ("BERTH_ALERTS_INTERVAL_SECONDS", "1"),
        ("BERTH_ALERTS_RESOLVE_HOLD_SECONDS", "1"),
    ])
    .await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "ledger@example.com", "business").await;
    let customer_id: Uuid = customer.parse().expect("uuid");
    let owner = app.customer_user(&admin, &customer, "owner@ledger.example").await;
    let res =
        owner.post("/api/v1/notification-channels", &json!({"kind": "email", "target": "ops@ledger.example"})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let site = app.running_site(&admin, &customer, "ledger", HOST).await;
    let id = site["id"].as_str().expect("id").to_owned();
    write_files(&volume_dir(&app, &id).await, "books", 5, 16 * 1024);
    let first = back_up(&owner, &id).await;
    assert_eq!(first["status"], "succeeded", "{first}");

    // Damage the repository: it no longer opens, so every attempt of the next backup fails.
    let config = backups(&app).local_path(customer_id).expect("local repository").join("config");
    let original = std::fs::read(&config).expect("read config");
    std::fs::write(&config, b"not a restic config").expect("damage config");
    let container = app.scope().names.container(id.parse().expect("uuid"));
    let before = app.inspect(&container).await;
    let failed = back_up(&owner, &id).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["verified"], false, "{failed}");

    // Once the job has used its attempts: one warning, one e-mail naming the site.
    let alert = backup_alert(&owner, &id, "firing", Duration::from_secs(90)).await;
    assert_eq!((alert["severity"].as_str(), alert["value"].as_f64()), (Some("warning"), Some(1.0)), "{alert}");
    let mails = sink.wait_for(1).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("Subject: [WARNING] ledger: backups are failing"), "{}", mails[0]);
    assert!(mails[0].contains("To: ops@ledger.example"), "{}", mails[0]);
    // The site kept running: the same container, never restarted, still serving.
    let after = app.inspect(&container).await;
    assert_eq!(after.id, before.id, "same container");
    let started = |c: &bollard::models::ContainerInspectResponse| c.state.as_ref().and_then(|s| s.started_at.clone());
    assert_eq!(started(&after), started(&before), "the container was never restarted");
    assert_eq!(after.state.as_ref().and_then(|s| s.running), Some(true));
    app.wait_ingress(HOST, 200).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sink.messages().len(), 1, "no repeat while it keeps failing");

    // Repaired: the next backup succeeds and the alert resolves with one notice.
    std::fs::write(&config, original).expect("repair config");
    let good = back_up(&owner, &id).await;
    assert_eq!(good["status"], "succeeded", "{good}");
    backup_alert(&owner, &id, "resolved", Duration::from_secs(60)).await;
    let mails = sink.wait_for(2).await;
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(mails.iter().any(|m| m.contains("Subject: [Resolved] ledger: backups are failing")), "{mails:?}");

    app.wait_for_idle_queue().await;
    app.finish().await;
}
