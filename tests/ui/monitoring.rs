//! Monitoring in the browser. An administrator sees a firing alert on the dashboard and the
//! alerts page, acknowledges its incident, edits a rule (an invalid value is refused with a
//! message and nothing typed is lost), adds a plan rule, adds channels (a loopback webhook is
//! refused readably) and sends a test that arrives at the SMTP sink, then creates and expires a
//! silence. A customer sees their own incidents and channels in the portal and gets the
//! not-found page for another customer's.
//!
//! The incidents are opened through `store::alerts::record`, the call the alert evaluation
//! makes when an alert fires: the pages are under test here, the evaluation has its own tests
//! (tests/monitoring/alerts.rs).

use berth_core::store::metrics::{self, Sample};
use fantoccini::Locator;
use serde_json::json;
use uuid::Uuid;

use super::{Browser, Js};
use crate::support::services::SmtpSink;
use crate::support::{Client, TestApp, ADMIN_EMAIL};

/// The seeded global CPU rule.
const CPU_RULE: &str = "01000000-0000-7000-8000-00000000a001";

async fn site(admin: &Client, customer: &str, name: &str) -> Uuid {
    let res = admin
        .post("/api/v1/sites", &json!({"customer_id": customer, "name": name, "domains": [format!("{name}.example")]}))
        .await;
    assert_eq!(res.status, reqwest::StatusCode::CREATED, "{}", res.text);
    res.str("id").parse().expect("uuid")
}

async fn value_of(b: &Browser, css: &str) -> String {
    let el = b.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css}: {e}"));
    el.prop("value").await.expect("value").unwrap_or_default()
}

async fn admin_monitoring(js: Js) {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with_workers(&[("BERTH_SMTP_URL", &sink.url)]).await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "ops@lighthouse.example", "business").await;
    let site_id = site(&admin, &customer, "lighthouse").await;
    let incident = crate::monitoring::fire_down(&app, site_id, &customer, 75).await;
    // A second site, and a latest sample of each, as the collector writes them: the dashboard
    // ranks them (the older sample of the first site must not count).
    let busy = site(&admin, &customer, "busybee").await;
    let now = chrono::Utc::now();
    let sample = |site_id: Uuid, ago_s: i64, cpu: f64, memory_mib: i64| Sample {
        site_id,
        customer_id: customer.parse().expect("uuid"),
        at: now - chrono::Duration::seconds(ago_s),
        cpu_usec: 0,
        cpu_percent: Some(cpu),
        memory_bytes: memory_mib * 1024 * 1024,
        memory_limit_bytes: 512 * 1024 * 1024,
        net_rx_bytes: 0,
        net_tx_bytes: 0,
        block_read_bytes: 0,
        block_write_bytes: 0,
        pids: 1,
        restarts: 0,
    };
    metrics::ensure_partitions(&app.db, now).await.expect("partitions");
    let samples = [sample(site_id, 30, 99.0, 500), sample(site_id, 5, 12.5, 64), sample(busy, 5, 87.0, 256)];
    metrics::insert_samples(&app.db, &samples).await.expect("insert samples");

    let mut b = Browser::start(&app, "monitoring", js).await;
    b.sign_in_as_admin().await;
    b.assert_js_state().await;
    assert_eq!(b.text_of("#d-firing").await, "1", "the dashboard counts the firing alert");
    assert_eq!(b.text_of("#d-down").await, "1", "and the site that is down");
    assert!(b.body_text().await.contains("This host"), "host figures");
    let by_cpu = b.text_of("#monitoring section[aria-labelledby='d-top-cpu'] ul").await;
    let at = |text: &str, name: &str| text.find(name).unwrap_or_else(|| panic!("{name} is not in {text}"));
    assert!(at(&by_cpu, "busybee") < at(&by_cpu, "lighthouse"), "busiest first: {by_cpu}");
    assert!(by_cpu.contains("87.0 %") && by_cpu.contains("12.5 %"), "the latest samples: {by_cpu}");
    let by_memory = b.text_of("#monitoring section[aria-labelledby='d-top-memory'] ul").await;
    assert!(by_memory.contains("256 MiB (50 % of the limit)"), "{by_memory}");
    assert!(at(&by_memory, "busybee") < at(&by_memory, "lighthouse"), "{by_memory}");
    b.snap("dashboard").await;

    // Alerts: the firing one, with its site, customer and incident.
    b.follow_link("Alerts").await;
    b.wait_for_text("Recently resolved").await;
    let firing = b.text_of("#alerts-firing").await;
    assert!(firing.contains("lighthouse") && firing.contains("ops@lighthouse.example Ltd"), "{firing}");
    assert!(firing.contains("75 s without a passing check"), "{firing}");
    b.snap("alerts").await;

    // The incident: its timeline, then Acknowledge.
    b.follow_link("incident").await;
    b.wait_for_text("Timeline").await;
    assert_eq!(b.path().await, format!("/admin/incidents/{incident}"));
    assert!(b.text_of("#incident-timeline").await.contains("no passing uptime check for 75 s"));
    b.press("Acknowledge").await;
    b.wait_for_text("Incident acknowledged.").await;
    assert_eq!(b.text_of("#incident-status").await, "acknowledged");
    assert!(b.text_of("#incident-timeline").await.contains(&format!("acknowledged by {ADMIN_EMAIL}")));
    assert!(!b.exists("form[action$='/acknowledge']").await, "nothing left to acknowledge");
    b.snap("incident").await;
    let api = admin.get(&format!("/api/v1/incidents/{incident}")).await;
    assert_eq!(api.body["status"], "acknowledged", "{}", api.text);

    // Incidents, filtered by status.
    b.open("/admin/incidents?status=open").await;
    b.wait_for_text("No incident in this status.").await;
    b.select("status", "acknowledged").await;
    b.press("Filter").await;
    b.wait_for_text("Newest first.").await;
    assert!(b.exists(&format!("a[href='/admin/incidents/{incident}']")).await);

    // Rules: an invalid value is refused with a message, and what was typed stays.
    b.open("/admin/alerts/rules").await;
    b.wait_for_text("Add a plan or site rule").await;
    b.client
        .find(Locator::Css(&format!("a[href='/admin/alerts/rules/{CPU_RULE}']")))
        .await
        .expect("edit link")
        .click()
        .await
        .expect("click");
    b.wait_for_text("Edit the CPU rule").await;
    b.fill("warning", "95").await;
    b.fill("critical", "lots").await;
    b.fill("for_seconds", "45").await;
    b.press("Save rule").await;
    b.wait_for_text("Please correct the fields marked below.").await;
    assert_eq!(b.text_of("#field-critical-error").await, "must be a number, e.g. 80 or 92.5");
    assert_eq!(value_of(&b, "#field-warning").await, "95");
    assert_eq!(value_of(&b, "#field-critical").await, "lots");
    assert_eq!(value_of(&b, "#field-for-seconds").await, "45");
    // The store's own check: critical below warning.
    b.fill("critical", "90").await;
    b.press("Save rule").await;
    b.wait_for_text("must be at least the warning threshold").await;
    assert_eq!(value_of(&b, "#field-warning").await, "95", "nothing typed is lost");
    b.snap("rule-error").await;
    let rules = admin.get("/api/v1/alert-rules").await;
    let cpu = rules.body.as_array().expect("rules").iter().find(|r| r["id"] == CPU_RULE).expect("cpu").clone();
    assert_eq!(cpu["warning"].as_f64(), Some(70.0), "a refused form changes nothing");
    b.fill("critical", "99").await;
    b.press("Save rule").await;
    b.wait_for_text("CPU rule saved.").await;
    let rules = admin.get("/api/v1/alert-rules").await;
    let cpu = rules.body.as_array().expect("rules").iter().find(|r| r["id"] == CPU_RULE).expect("cpu").clone();
    assert_eq!(
        (cpu["warning"].as_f64(), cpu["critical"].as_f64(), cpu["for_seconds"].as_i64()),
        (Some(95.0), Some(99.0), Some(45))
    );
    // A plan's own memory rule.
    b.select("metric", "memory").await;
    b.select("scope", "plan").await;
    b.select("plan", "business").await;
    b.fill("warning", "70").await;
    b.fill("critical", "90").await;
    b.fill("for_seconds", "60").await;
    b.press("Add rule").await;
    b.wait_for_text("Memory rule added for the plan.").await;
    // The eight seeded global rules and the plan's own.
    assert_eq!(admin.get("/api/v1/alert-rules").await.body.as_array().map(Vec::len), Some(9));
    b.snap("rules").await;
    // Only the plan's rule can be deleted, after a confirmation.
    let deletes = b.client.find_all(Locator::LinkText("Delete")).await.expect("links");
    assert_eq!(deletes.len(), 1, "global rules have no Delete");
    deletes[0].clone().click().await.expect("click");
    b.wait_for_text("The plan's or the global rule applies again.").await;
    b.press("Delete rule").await;
    b.wait_for_text("Rule deleted.").await;
    assert_eq!(admin.get("/api/v1/alert-rules").await.body.as_array().map(Vec::len), Some(8));

    // Channels: a loopback webhook is refused with a readable message; an e-mail is added and
    // its test arrives.
    b.open("/admin/alerts/channels").await;
    b.wait_for_text("Add a channel").await;
    b.select("kind", "webhook").await;
    b.fill("target", "http://127.0.0.1:9/hook").await;
    b.press("Add channel").await;
    b.wait_for_text("Please correct the fields marked below.").await;
    let error = b.text_of("#field-target-error").await;
    assert!(error.contains("loopback"), "the target field says why: {error}");
    assert_eq!(value_of(&b, "#field-target").await, "http://127.0.0.1:9/hook");
    b.snap("channel-refused").await;
    b.select("kind", "email").await;
    b.fill("target", "noc@hosting.example").await;
    b.press("Add channel").await;
    b.wait_for_text("Channel noc@hosting.example added.").await;
    b.press("Send test").await;
    b.wait_for_text("A test notification to noc@hosting.example is on its way.").await;
    let mails = sink.wait_for(1).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("Subject: [TEST] Test notification from Berth"), "{}", mails[0]);
    b.snap("channels").await;
    b.follow_link("Delete").await;
    b.wait_for_text("Delete the channel noc@hosting.example?").await;
    b.press("Delete channel").await;
    b.wait_for_text("Channel deleted.").await;
    assert_eq!(admin.get("/api/v1/notification-channels").await.body, json!([]));

    // Silences: the end is required; a 4-hour silence of the site, then expired.
    b.follow_link("Silences").await;
    b.wait_for_text("No silence is in force").await;
    b.select("duration", "").await;
    b.fill("reason", "moving the database").await;
    b.press("Create silence").await;
    b.wait_for_text("is required: a silence always ends").await;
    assert_eq!(value_of(&b, "#field-reason").await, "moving the database");
    b.select("scope", "site").await;
    b.select("site", &site_id.to_string()).await;
    b.select("metric", "down").await;
    b.select("duration", "4h").await;
    b.press("Create silence").await;
    b.wait_for_text("Silenced until").await;
    let listed = admin.get("/api/v1/alert-silences").await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(1), "{}", listed.text);
    assert_eq!(listed.body[0]["site_id"], site_id.to_string());
    assert!(b.body_text().await.contains("moving the database"));
    b.snap("silences").await;
    b.press("Expire now").await;
    b.wait_for_text("Silence expired: notifications resume.").await;
    assert!(b.body_text().await.contains("No silence is in force"));
    assert_eq!(admin.get("/api/v1/alert-silences").await.body, json!([]));

    b.close().await;
    app.wait_for_idle_queue().await;
    app.stop().await;
}

#[tokio::test]
async fn admin_watches_alerts_acknowledges_edits_rules_channels_and_silences_with_javascript() {
    admin_monitoring(Js::On).await;
}

#[tokio::test]
async fn admin_watches_alerts_acknowledges_edits_rules_channels_and_silences_without_javascript() {
    admin_monitoring(Js::Off).await;
}

async fn portal_monitoring(js: Js) {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mine = app.customer(&admin, "me@harbour.example", "business").await;
    let theirs = app.customer(&admin, "them@quay.example", "business").await;
    let my_site = site(&admin, &mine, "harbour").await;
    let their_site = site(&admin, &theirs, "quay").await;
    let my_incident = crate::monitoring::fire_down(&app, my_site, &mine, 75).await;
    let their_incident = crate::monitoring::fire_down(&app, their_site, &theirs, 75).await;
    app.customer_user(&admin, &mine, "owner@harbour.example").await;
    let other = app.customer_user(&admin, &theirs, "owner@quay.example").await;
    let res =
        other.post("/api/v1/notification-channels", &json!({"kind": "email", "target": "secret@quay.example"})).await;
    assert_eq!(res.status, reqwest::StatusCode::CREATED, "{}", res.text);
    let their_channel = res.str("id");

    let mut b = Browser::start(&app, "portal-monitoring", js).await;
    b.sign_in("/portal/login", "owner@harbour.example", "Portal-Password-42", None).await;
    b.wait_for_text("My sites").await;
    b.follow_link("Alerts").await;
    b.wait_for_text("Open incidents").await;
    let text = b.body_text().await;
    assert!(text.contains("harbour") && !text.contains("quay"), "only the customer's own: {text}");
    assert!(!text.contains("secret@quay.example"), "{text}");

    // A private webhook is refused readably; an e-mail channel is added.
    b.select("kind", "webhook").await;
    b.fill("target", "http://10.0.0.7/hook").await;
    b.press("Add channel").await;
    b.wait_for_text("Please correct the fields marked below.").await;
    assert!(!b.text_of("#field-target-error").await.is_empty());
    assert!(!b.exists("input[name='allow_private']").await, "customers cannot allow private addresses");
    b.select("kind", "email").await;
    b.fill("target", "pager@harbour.example").await;
    b.press("Add channel").await;
    b.wait_for_text("Channel pager@harbour.example added.").await;
    b.snap("portal-alerts").await;

    // Their own incident: read and acknowledge.
    b.open(&format!("/portal/incidents/{my_incident}")).await;
    b.wait_for_text("Timeline").await;
    b.press("Acknowledge").await;
    b.wait_for_text("Incident acknowledged.").await;
    assert!(b.text_of("#incident-timeline").await.contains("acknowledged by owner@harbour.example"));

    // Another customer's incident and channel: the not-found page, nothing about them.
    for path in [
        format!("/portal/incidents/{their_incident}"),
        format!("/portal/alerts/channels/{their_channel}/delete"),
        format!("/admin/incidents/{my_incident}"),
    ] {
        b.open(&path).await;
        b.wait_for_text("Page not found").await;
        assert!(!b.body_text().await.contains("quay"), "{path}");
    }
    let theirs_now = admin.get(&format!("/api/v1/incidents/{their_incident}")).await;
    assert_eq!(theirs_now.body["status"], "open", "untouched: {}", theirs_now.text);
    assert_eq!(other.get("/api/v1/notification-channels").await.body.as_array().map(Vec::len), Some(1));

    b.close().await;
    app.stop().await;
}

#[tokio::test]
async fn customer_sees_only_their_own_incidents_and_channels_with_javascript() {
    portal_monitoring(Js::On).await;
}

#[tokio::test]
async fn customer_sees_only_their_own_incidents_and_channels_without_javascript() {
    portal_monitoring(Js::Off).await;
}
