//! Alerts end to end on a real container, the real ingress, PostgreSQL and an SMTP sink: a site
//! that stops answering fires its down alert within the (shortened) window, mails its owner's
//! channel once, opens an incident with its timeline that only its owner sees, and resolves
//! with one notice when it answers again.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::runtime::engine;
use crate::support::services::SmtpSink;
use crate::support::{Client, TestApp};

/// Polls `path` until `done` holds for the answer, failing after `within`.
pub(super) async fn wait_json(client: &Client, path: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let res = client.get(path).await;
        if res.status == StatusCode::OK && done(&res.body) {
            return res.body;
        }
        assert!(Instant::now() < deadline, "{path} never matched within {within:?}: {} {}", res.status, res.text);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The recent checks, the alerts and the alert jobs, for a failure message.
pub(super) async fn diagnose(app: &TestApp) -> String {
    use sea_orm::{ConnectionTrait, Statement};
    let mut out = String::new();
    for sql in [
        "SELECT at_ms, status_code, up, error FROM site_checks ORDER BY at_ms DESC LIMIT 12",
        "SELECT metric, state, severity, value FROM alerts",
        "SELECT kind, state, CAST(run_at AS TEXT), last_error FROM jobs ORDER BY run_at DESC LIMIT 12",
        "SELECT name, CAST(status AS TEXT), CAST(health AS TEXT), status_reason FROM sites",
    ] {
        let rows = app
            .db
            .query_all(Statement::from_string(app.db.get_database_backend(), sql.to_owned()))
            .await
            .expect("diagnostic query");
        out.push_str(&format!("\n{sql}:\n"));
        for row in rows {
            let values: Vec<String> = (0..4)
                .map(|i| {
                    row.try_get_by_index::<Option<String>>(i)
                        .map(|v| format!("{v:?}"))
                        .or_else(|_| row.try_get_by_index::<Option<i64>>(i).map(|v| format!("{v:?}")))
                        .or_else(|_| row.try_get_by_index::<Option<f64>>(i).map(|v| format!("{v:?}")))
                        .or_else(|_| row.try_get_by_index::<Option<bool>>(i).map(|v| format!("{v:?}")))
                        .or_else(|_| row.try_get_by_index::<Option<i32>>(i).map(|v| format!("{v:?}")))
                        .unwrap_or_else(|e| format!("?{e}"))
                })
                .collect();
            out.push_str(&format!("  {}\n", values.join(" | ")));
        }
    }
    out
}

/// A webhook receiver on loopback that keeps every JSON body it is sent.
pub(super) async fn webhook_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let store = store.clone();
            async move {
                store.lock().expect("lock").push(body);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (url, seen)
}

pub(super) fn kinds(incident: &Value) -> Vec<String> {
    incident["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_owned())
        .collect()
}

#[tokio::test]
async fn a_site_that_stops_answering_pages_its_owner_once_and_resolves_once() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_runtime_with(&[
        ("BERTH_SMTP_URL", &sink.url),
        ("BERTH_METRICS_INTERVAL_SECONDS", "1"),
        ("BERTH_UPTIME_INTERVAL_SECONDS", "1"),
        ("BERTH_ALERTS_INTERVAL_SECONDS", "1"),
        ("BERTH_ALERTS_RESOLVE_HOLD_SECONDS", "2"),
    ])
    .await;
    let admin = app.admin().await;
    let mine = app.customer(&admin, "pager@example.com", "business").await;
    let theirs = app.customer(&admin, "bystander@example.com", "business").await;
    let owner = app.customer_user(&admin, &mine, "owner@pager.example").await;
    let other = app.customer_user(&admin, &theirs, "other@bystander.example").await;
    let res =
        owner.post("/api/v1/notification-channels", &json!({"kind": "email", "target": "oncall@pager.example"})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    assert_eq!(res.body["customer_id"], mine.as_str());
    // The administrators' webhook: on loopback, so only with allow_private (admins only).
    let (hook_url, hooks) = webhook_receiver().await;
    let res = admin.post("/api/v1/notification-channels", &json!({"kind": "webhook", "target": hook_url})).await;
    res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let res = admin
        .post("/api/v1/notification-channels", &json!({"kind": "webhook", "target": hook_url, "allow_private": true}))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);

    let site = app.running_site(&admin, &mine, "watched", "watched.alerts.test").await;
    let id = site["id"].as_str().expect("id").to_owned();
    app.wait_ingress("watched.alerts.test", 200).await;
    // Once it serves (a start-up hiccup must not count), shorten the down rule's window:
    // warning after 2 s without a passing check.
    let rules = admin.get("/api/v1/alert-rules").await;
    assert_eq!(rules.status, StatusCode::OK, "{}", rules.text);
    let down = rules.body.as_array().expect("rules").iter().find(|r| r["metric"] == "down").expect("down rule").clone();
    assert_eq!((down["warning"].as_f64(), down["critical"].as_f64()), (Some(60.0), Some(300.0)), "the default");
    let res = admin
        .patch(
            &format!("/api/v1/alert-rules/{}", down["id"].as_str().expect("id")),
            &json!({"warning": 2, "critical": 600}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);

    // Healthy for a while: checks pass, nothing pending or firing, no mail.
    wait_json(&owner, "/api/v1/alerts", Duration::from_secs(5), |_| true).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let alerts = owner.get("/api/v1/alerts?state=firing").await;
    assert_eq!(alerts.body["items"], json!([]), "nothing fires while the site answers");
    assert!(sink.messages().is_empty());

    // The container freezes: nginx reaches it but nothing answers, checks time out.
    let name = app.scope().names.container(id.parse().expect("uuid"));
    engine().client().pause_container(&name).await.expect("docker pause");
    let deadline = Instant::now() + Duration::from_secs(60);
    let firing = loop {
        let res = owner.get("/api/v1/alerts?state=firing").await;
        if res.body["items"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["site_id"] == id.as_str() && x["metric"] == "down"))
        {
            break res.body;
        }
        assert!(Instant::now() < deadline, "the down alert never fired: {}", diagnose(&app).await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let alert = firing["items"][0].clone();
    assert_eq!(alert["severity"], "warning", "{alert}");
    assert_eq!(alert["fingerprint"].as_str().map(str::len), Some(32));
    let incident_id = alert["incident_id"].as_str().expect("incident").to_owned();

    let incident = wait_json(&owner, &format!("/api/v1/incidents/{incident_id}"), Duration::from_secs(30), |b| {
        b["events"].as_array().is_some_and(|e| e.len() >= 3)
    })
    .await;
    assert_eq!(kinds(&incident), ["fired", "notified", "notified"], "{incident}");
    assert_eq!(incident["status"], "open");
    assert_eq!(incident["fingerprint"], alert["fingerprint"]);
    let mails = sink.wait_for(1).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("Subject: [WARNING] watched is down"), "{}", mails[0]);
    assert!(mails[0].contains("To: oncall@pager.example"), "{}", mails[0]);
    // The admins' webhook got the same firing, with the alert's stable fingerprint.
    let fired = hooks.lock().expect("lock").clone();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["status"], "firing");
    assert_eq!(fired[0]["fingerprint"], alert["fingerprint"]);
    assert_eq!(fired[0]["incident_id"], incident_id.as_str());
    assert_eq!((fired[0]["metric"].as_str(), fired[0]["severity"].as_str()), (Some("down"), Some("warning")));
    assert_eq!(fired[0]["site"]["name"], "watched");

    // Still down a while longer: no second page.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(sink.messages().len(), 1, "no repeat while firing");
    assert_eq!(owner.get("/api/v1/incidents").await.body["items"].as_array().map(Vec::len), Some(1));

    // Another tenant: the incident and its acknowledgement are 404, the lists are empty.
    other.get(&format!("/api/v1/incidents/{incident_id}")).await.assert_problem(StatusCode::NOT_FOUND, "not-found");
    other
        .post(&format!("/api/v1/incidents/{incident_id}/acknowledge"), &json!({}))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    assert_eq!(other.get("/api/v1/alerts").await.body["items"], json!([]));
    assert_eq!(other.get("/api/v1/incidents").await.body["items"], json!([]));
    // The owner acknowledges; the admin sees it too.
    let res = owner.post(&format!("/api/v1/incidents/{incident_id}/acknowledge"), &json!({})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["status"], "acknowledged");
    assert_eq!(res.body["acknowledged_by"], "owner@pager.example");
    assert_eq!(admin.get(&format!("/api/v1/incidents/{incident_id}")).await.status, StatusCode::OK);

    // It answers again: resolved after the hold, one resolved notice, incident resolved.
    engine().client().unpause_container(&name).await.expect("docker unpause");
    let incident = wait_json(&owner, &format!("/api/v1/incidents/{incident_id}"), Duration::from_secs(90), |b| {
        b["status"] == "resolved" && kinds(b).iter().filter(|k| *k == "notified").count() == 4
    })
    .await;
    assert_eq!(
        kinds(&incident),
        ["fired", "notified", "notified", "acknowledged", "resolved", "notified", "notified"],
        "{incident}"
    );
    let mails = sink.wait_for(2).await;
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(mails.iter().any(|m| m.contains("Subject: [Resolved] watched is down")), "{mails:?}");
    let alerts = owner.get("/api/v1/alerts").await;
    let down: Vec<&Value> =
        alerts.body["items"].as_array().expect("alerts").iter().filter(|a| a["metric"] == "down").collect();
    assert_eq!(down.len(), 1, "one alert per site and metric: {alerts:?}", alerts = alerts.body);
    assert_eq!(down[0]["state"], "resolved");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sink.messages().len(), 2, "nothing more once resolved");
    let all = hooks.lock().expect("lock").clone();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1]["status"], "resolved");
    assert_eq!(all[1]["fingerprint"], alert["fingerprint"], "the same fingerprint closes it");

    app.wait_for_idle_queue().await;
    app.finish().await;
}

/// A site whose container stops answering before a check fails (the reconciler marks it failed
/// and the checks stop reaching it) is down from a round after its last passing check.
#[tokio::test]
async fn a_site_the_checks_no_longer_reach_fires_from_its_last_passing_check() {
    let app = TestApp::spawn_runtime_with(&[
        ("BERTH_METRICS_INTERVAL_SECONDS", "1"),
        ("BERTH_UPTIME_INTERVAL_SECONDS", "1"),
        ("BERTH_ALERTS_INTERVAL_SECONDS", "1"),
        ("BERTH_ALERTS_RESOLVE_HOLD_SECONDS", "2"),
    ])
    .await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "remedy@example.com", "business").await;
    let site = app.running_site(&admin, &customer, "remedied", "remedied.alerts.test").await;
    let id = site["id"].as_str().expect("id").to_owned();
    app.wait_ingress("remedied.alerts.test", 200).await;
    let rules = admin.get("/api/v1/alert-rules").await;
    let down = rules.body.as_array().expect("rules").iter().find(|r| r["metric"] == "down").expect("down").clone();
    let res = admin
        .patch(
            &format!("/api/v1/alert-rules/{}", down["id"].as_str().expect("id")),
            &json!({"warning": 2, "critical": 600}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);

    // The down value counts from the checks: wait until one passed.
    wait_json(&admin, &format!("/api/v1/sites/{id}/metrics?series=up"), Duration::from_secs(30), |b| {
        b["series"]["up"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let name = app.scope().names.container(id.parse().expect("uuid"));
    engine().client().pause_container(&name).await.expect("docker pause");
    let deadline = Instant::now() + Duration::from_secs(60);
    let incidents = loop {
        let res = admin.get("/api/v1/incidents").await;
        if res.body["items"].as_array().is_some_and(|a| !a.is_empty()) {
            break res.body;
        }
        assert!(Instant::now() < deadline, "no incident: {}", diagnose(&app).await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let incident_id = incidents["items"][0]["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/incidents/{incident_id}");
    let incident = admin.get(&path).await.body;
    assert_eq!(incident["metric"], "down", "{incident}");
    assert_eq!(kinds(&incident), ["fired"], "no channels, no notifications: {incident}");
    let detail = incident["events"][0]["detail"].as_str().expect("detail").to_owned();
    assert!(detail.starts_with("no passing uptime check for "), "{detail}");

    engine().client().unpause_container(&name).await.expect("docker unpause");
    wait_json(&admin, &path, Duration::from_secs(90), |b| b["status"] == "resolved").await;
    app.wait_for_idle_queue().await;
    app.finish().await;
}

/// A silence holds notifications back but nothing else: the down alert fires, its incident
/// opens and says `silenced`, and no e-mail arrives. Once the silence is expired, the next
/// transition (resolved) notifies again.
#[tokio::test]
async fn a_silenced_alert_opens_its_incident_without_paging_until_the_silence_expires() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_runtime_with(&[
        ("BERTH_SMTP_URL", &sink.url),
        ("BERTH_METRICS_INTERVAL_SECONDS", "1"),
        ("BERTH_UPTIME_INTERVAL_SECONDS", "1"),
        ("BERTH_ALERTS_INTERVAL_SECONDS", "1"),
        ("BERTH_ALERTS_RESOLVE_HOLD_SECONDS", "2"),
    ])
    .await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "hushed@example.com", "business").await;
    let owner = app.customer_user(&admin, &customer, "owner@hushed.example").await;
    let res =
        owner.post("/api/v1/notification-channels", &json!({"kind": "email", "target": "oncall@hushed.example"})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let site = app.running_site(&admin, &customer, "hushed", "hushed.alerts.test").await;
    let id = site["id"].as_str().expect("id").to_owned();
    app.wait_ingress("hushed.alerts.test", 200).await;
    let rules = admin.get("/api/v1/alert-rules").await;
    let down = rules.body.as_array().expect("rules").iter().find(|r| r["metric"] == "down").expect("down").clone();
    let res = admin
        .patch(
            &format!("/api/v1/alert-rules/{}", down["id"].as_str().expect("id")),
            &json!({"warning": 2, "critical": 600}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    // Silence this site's down alerts for an hour.
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let res = admin
        .post(
            "/api/v1/alert-silences",
            &json!({"scope": "site", "site_id": id, "metric": "down", "ends_at": until, "reason": "planned maintenance"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let silence = res.str("id");
    wait_json(&admin, &format!("/api/v1/sites/{id}/metrics?series=up"), Duration::from_secs(30), |b| {
        b["series"]["up"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;

    let name = app.scope().names.container(id.parse().expect("uuid"));
    engine().client().pause_container(&name).await.expect("docker pause");
    let deadline = Instant::now() + Duration::from_secs(60);
    let incident_id = loop {
        let res = owner.get("/api/v1/incidents").await;
        if let Some(first) = res.body["items"].as_array().and_then(|a| a.first()) {
            break first["id"].as_str().expect("id").to_owned();
        }
        assert!(Instant::now() < deadline, "no incident: {}", diagnose(&app).await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let path = format!("/api/v1/incidents/{incident_id}");
    let incident = wait_json(&owner, &path, Duration::from_secs(10), |b| kinds(b).len() >= 2).await;
    assert_eq!(kinds(&incident), ["fired", "silenced"], "{incident}");
    let detail = incident["events"][1]["detail"].as_str().expect("detail");
    assert!(detail.contains("planned maintenance") && detail.contains("silenced until"), "{detail}");
    let firing = owner.get("/api/v1/alerts?state=firing").await;
    assert_eq!(firing.body["items"].as_array().map(Vec::len), Some(1), "the alert still fires: {}", firing.text);
    // No notification job was queued: nothing arrives, however long we wait.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(sink.messages().is_empty(), "a silenced alert paged: {:?}", sink.messages());

    // The silence ends; the next transition (resolved) notifies as usual.
    assert_eq!(admin.delete(&format!("/api/v1/alert-silences/{silence}")).await.status, StatusCode::NO_CONTENT);
    engine().client().unpause_container(&name).await.expect("docker unpause");
    let incident = wait_json(&owner, &path, Duration::from_secs(90), |b| {
        b["status"] == "resolved" && kinds(b).iter().any(|k| k == "notified")
    })
    .await;
    assert_eq!(kinds(&incident), ["fired", "silenced", "resolved", "notified"], "{incident}");
    let mails = sink.wait_for(1).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("Subject: [Resolved] hushed is down"), "{}", mails[0]);

    app.wait_for_idle_queue().await;
    app.finish().await;
}
