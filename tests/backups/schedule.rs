//! Scheduled backups: the `backup.schedule` job queues a site's backup when its effective
//! `backup_cron` ticks, as a `hourly` backup that the real `backup.site` job writes and verifies.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn a_site_is_backed_up_when_its_own_schedule_ticks() {
    let app = TestApp::spawn_runtime_with(&[("BERTH_BACKUP_SCHEDULES", "true")]).await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "scheduled@example.com", "business").await;
    let owner = app.customer_user(&admin, &customer, "owner@scheduled.example.com").await;
    let site = app.running_site(&owner, &customer, "home", "home.schedule-backup.test").await;
    let site_id = site["id"].as_str().expect("id").to_owned();
    let policy = format!("/api/v1/sites/{site_id}/backup-policy");
    let list = format!("/api/v1/sites/{site_id}/backups");
    assert_eq!(owner.get(&list).await.body["items"], json!([]), "nothing before a tick");

    // Every minute: the next tick (second 20 of the next minute at the latest) queues one.
    let put = admin.request(Method::PUT, &policy, Some(&json!({"backup_cron": "* * * * *"}))).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    let deadline = Instant::now() + Duration::from_secs(180);
    let backup = loop {
        let res = owner.get(&list).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        let done = res.body["items"]
            .as_array()
            .and_then(|items| items.iter().find(|b| b["status"] == "succeeded" || b["status"] == "failed").cloned());
        if let Some(backup) = done {
            break backup;
        }
        assert!(Instant::now() < deadline, "no scheduled backup finished within 180 s: {}", res.text);
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(backup["kind"], "hourly", "{backup}");
    assert_eq!(backup["status"], "succeeded", "{backup}");
    assert_eq!(backup["verified"], true, "{backup}");

    // Back to a schedule that does not tick during the rest of the test, so nothing is left
    // queued when the app stops.
    let put = admin.request(Method::PUT, &policy, Some(&json!({"backup_cron": "0 0 1 1 *"}))).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    app.stop().await;
}
