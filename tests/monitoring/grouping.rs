//! Many sites failing in the same evaluation round notify each channel once, in one message
//! listing them, while each site still gets its own incident (real containers, PostgreSQL and an
//! SMTP sink).

use std::time::{Duration, Instant};

use serde_json::json;

use super::alerts::{diagnose, kinds, wait_json};
use super::rules::set_rule;
use crate::support::runtime::engine;
use crate::support::services::SmtpSink;
use crate::support::TestApp;

#[tokio::test]
async fn five_sites_down_in_one_round_send_one_mail_listing_them() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_runtime_with(&[
        ("BERTH_SMTP_URL", &sink.url),
        ("BERTH_METRICS_INTERVAL_SECONDS", "2"),
        ("BERTH_UPTIME_INTERVAL_SECONDS", "1"),
        ("BERTH_ALERTS_INTERVAL_SECONDS", "1"),
        ("BERTH_ALERTS_RESOLVE_HOLD_SECONDS", "2"),
    ])
    .await;
    let admin = app.admin().await;
    let res =
        admin.post("/api/v1/notification-channels", &json!({"kind": "email", "target": "noc@hosting.example"})).await;
    assert_eq!(res.status, reqwest::StatusCode::CREATED, "{}", res.text);
    let customer = app.customer(&admin, "fleet@example.com", "pro").await;
    let mut sites = Vec::new();
    for n in 1..=5 {
        let name = format!("fleet{n}");
        let domain = format!("{name}.alerts.test");
        let site = app.running_site(&admin, &customer, &name, &domain).await;
        app.wait_ingress(&domain, 200).await;
        sites.push((site["id"].as_str().expect("id").to_owned(), name));
    }
    // The down rule is off while the sites go down, so that all of them cross its threshold in
    // the same round once it is on again.
    set_rule(&admin, "down", json!({"enabled": false})).await;
    for (id, _) in &sites {
        wait_json(&admin, &format!("/api/v1/sites/{id}/metrics?series=up"), Duration::from_secs(30), |b| {
            b["series"]["up"].as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
    }
    let names: Vec<String> =
        sites.iter().map(|(id, _)| app.scope().names.container(id.parse().expect("uuid"))).collect();
    for name in &names {
        engine().client().pause_container(name).await.expect("docker pause");
    }
    // Long enough for every site's checks to be overdue (a round plus the check's 10 s timeout
    // since its last passing check): from then on each reads as down for seconds already.
    tokio::time::sleep(Duration::from_secs(14)).await;
    assert!(sink.messages().is_empty());
    set_rule(&admin, "down", json!({"enabled": true, "warning": 2, "critical": 600})).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let res = admin.get("/api/v1/alerts?state=firing").await;
        let firing = res.body["items"].as_array().map_or(0, |a| a.iter().filter(|x| x["metric"] == "down").count());
        if firing == 5 {
            break;
        }
        assert!(Instant::now() < deadline, "{firing} of 5 down alerts fire: {}", diagnose(&app).await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mails = sink.wait_for(1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mails_now = sink.messages();
    assert_eq!(mails_now.len(), 1, "one grouped mail, not one per site: {mails_now:?}");
    let mail = &mails[0];
    assert!(mail.contains("Subject: [WARNING] 5 sites need attention"), "{mail}");
    for (_, name) in &sites {
        assert!(mail.contains(&format!("{name} is down")), "{name} missing from {mail}");
    }
    // Each site has its own incident, told to the channel as part of the group.
    let incidents = admin.get("/api/v1/incidents").await.body;
    let items = incidents["items"].as_array().expect("incidents").clone();
    assert_eq!(items.len(), 5, "{incidents}");
    for item in &items {
        let path = format!("/api/v1/incidents/{}", item["id"].as_str().expect("id"));
        let incident = wait_json(&admin, &path, Duration::from_secs(10), |b| kinds(b).len() >= 2).await;
        assert_eq!(kinds(&incident), ["fired", "notified"], "{incident}");
        let detail = incident["events"][1]["detail"].as_str().expect("detail");
        assert!(detail.contains("grouped with 4 other sites"), "{detail}");
    }

    for name in &names {
        engine().client().unpause_container(name).await.expect("docker unpause");
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let res = admin.get("/api/v1/incidents?status=resolved").await;
        if res.body["items"].as_array().map_or(0, Vec::len) == 5 {
            break;
        }
        assert!(Instant::now() < deadline, "not all resolved: {}", diagnose(&app).await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    app.wait_for_idle_queue().await;
    app.finish().await;
}
