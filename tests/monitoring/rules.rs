//! The alert rules beyond "down", each end to end on a real container, the real engine,
//! PostgreSQL and an SMTP sink: CPU (a busy loop), container restarts (the process killed
//! behind Berth's back), certificate expiry (a short self-signed certificate in the store), and
//! disk use against the plan's storage (files written into the volume), with the warning →
//! critical escalation notified once. Slack- and Discord-shaped channels get the certificate
//! alert, checked at a real local receiver.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

use super::alerts::{diagnose, kinds, wait_json, webhook_receiver};
use crate::support::runtime::engine;
use crate::support::services::SmtpSink;
use crate::support::{Client, TestApp};

/// Changes the global rule of `metric`.
pub(super) async fn set_rule(admin: &Client, metric: &str, patch: Value) {
    let rules = admin.get("/api/v1/alert-rules").await;
    assert_eq!(rules.status, StatusCode::OK, "{}", rules.text);
    let rule = rules
        .body
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["metric"] == metric && r["scope"] == "global")
        .unwrap_or_else(|| panic!("no global {metric} rule: {}", rules.text))
        .clone();
    let res = admin.patch(&format!("/api/v1/alert-rules/{}", rule["id"].as_str().expect("id")), &patch).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
}

/// Polls the alerts until the site's `metric` alert is in `state`; returns it.
pub(super) async fn wait_alert(app: &TestApp, client: &Client, site: &str, metric: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let res = client.get(&format!("/api/v1/alerts?state={state}")).await;
        let found = res.body["items"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["site_id"] == site && x["metric"] == metric).cloned());
        if let Some(alert) = found {
            return alert;
        }
        assert!(Instant::now() < deadline, "the {metric} alert never got {state}: {}", diagnose(app).await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Starts `argv` in a container and leaves it running (a detached exec).
pub(super) async fn exec_detached(container: &str, argv: &[&str]) {
    use bollard::exec::{CreateExecOptions, StartExecOptions};
    let docker = engine();
    let exec = docker
        .client()
        .create_exec(
            container,
            CreateExecOptions { cmd: Some(argv.iter().map(|s| s.to_string()).collect()), ..Default::default() },
        )
        .await
        .expect("create exec");
    docker
        .client()
        .start_exec(&exec.id, Some(StartExecOptions { detach: true, ..Default::default() }))
        .await
        .expect("start exec");
}

fn fast<'a>() -> Vec<(&'a str, &'a str)> {
    vec![
        ("BERTH_METRICS_INTERVAL_SECONDS", "1"),
        ("BERTH_UPTIME_INTERVAL_SECONDS", "1"),
        ("BERTH_ALERTS_INTERVAL_SECONDS", "1"),
        ("BERTH_ALERTS_RESOLVE_HOLD_SECONDS", "2"),
    ]
}

#[tokio::test]
async fn a_busy_loop_fires_the_cpu_alert_mails_once_and_resolves_when_it_stops() {
    let sink = SmtpSink::start().await;
    let mut vars = fast();
    vars.push(("BERTH_SMTP_URL", &sink.url));
    let app = TestApp::spawn_runtime_with(&vars).await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "busy@example.com", "business").await;
    let res =
        admin.post("/api/v1/notification-channels", &json!({"kind": "email", "target": "ops@hosting.example"})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let site = app.running_site(&admin, &customer, "busy", "busy.alerts.test").await;
    let id = site["id"].as_str().expect("id").to_owned();
    app.wait_ingress("busy.alerts.test", 200).await;
    // Warning from 15 % of one core held for 2 s (the machine is shared: a spinning shell gets
    // far more than that, an idle busybox httpd far less); no critical.
    set_rule(&admin, "cpu", json!({"warning": 15, "critical": 100000, "for_seconds": 2})).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(admin.get("/api/v1/alerts?state=firing").await.body["items"], json!([]), "idle: nothing fires");
    assert!(sink.messages().is_empty());

    let name = app.scope().names.container(id.parse().expect("uuid"));
    exec_detached(&name, &["/bin/busybox", "sh", "-c", "while [ ! -e /tmp/stop-spinning ]; do :; done"]).await;
    let alert = wait_alert(&app, &admin, &id, "cpu", "firing").await;
    assert_eq!(alert["severity"], "warning", "{alert}");
    assert!(alert["value"].as_f64().expect("value") >= 15.0, "{alert}");
    let mails = sink.wait_for(1).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("Subject: [WARNING] busy: CPU use is high"), "{}", mails[0]);
    // Still spinning: no second mail.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(sink.messages().len(), 1, "no repeat while firing");

    let (code, out) = app.exec(&name, &["/bin/busybox", "touch", "/tmp/stop-spinning"]).await;
    assert_eq!(code, 0, "{out}");
    let incident_id = alert["incident_id"].as_str().expect("incident").to_owned();
    wait_json(&admin, &format!("/api/v1/incidents/{incident_id}"), Duration::from_secs(60), |b| {
        b["status"] == "resolved"
    })
    .await;
    let mails = sink.wait_for(2).await;
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(mails.iter().any(|m| m.contains("Subject: [Resolved] busy: CPU use is high")), "{mails:?}");
    app.wait_for_idle_queue().await;
    app.finish().await;
}

#[tokio::test]
async fn a_container_restarted_twice_behind_berths_back_fires_the_restarts_alert() {
    let app = TestApp::spawn_runtime_with(&fast()).await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "restarts@example.com", "business").await;
    let site = app.running_site(&admin, &customer, "flaky", "flaky.alerts.test").await;
    let id = site["id"].as_str().expect("id").to_owned();
    let rules = admin.get("/api/v1/alert-rules").await.body;
    let rule = rules.as_array().expect("rules").iter().find(|r| r["metric"] == "restarts").expect("seeded").clone();
    assert_eq!(
        (rule["warning"].as_f64(), rule["critical"].as_f64(), rule["for_seconds"].as_i64()),
        (Some(1.0), Some(3.0), Some(0))
    );
    // Sampled with no restart yet: nothing fires.
    super::wait_metrics(
        &app,
        &admin,
        &format!("/api/v1/sites/{id}/metrics?series=pids"),
        Duration::from_secs(30),
        |b| super::values(b, "pids").len() >= 2,
    )
    .await;
    assert_eq!(admin.get("/api/v1/alerts?state=firing").await.body["items"], json!([]));

    // The site's process dies twice (its init is told to stop from inside): Docker's restart
    // policy brings it back each time, and counts.
    let name = app.scope().names.container(id.parse().expect("uuid"));
    for round in 1..=2i64 {
        let _ = app.exec_within(Duration::from_secs(10), &name, &["/bin/busybox", "kill", "1"]).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let state = app.inspect(&name).await;
            // Docker reports a container being restarted as running *and* restarting; an exec
            // into it then fails, so wait until it is only running.
            let running = state.state.as_ref().and_then(|s| s.running) == Some(true)
                && state.state.as_ref().and_then(|s| s.restarting) != Some(true);
            if running && state.restart_count == Some(round) {
                break;
            }
            assert!(Instant::now() < deadline, "restart {round} never happened: {:?}", state.state);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let alert = wait_alert(&app, &admin, &id, "restarts", "firing").await;
    assert_eq!(alert["severity"], "warning", "{alert}");
    let incident = admin.get(&format!("/api/v1/incidents/{}", alert["incident_id"].as_str().expect("incident"))).await;
    let detail = incident.body["events"][0]["detail"].as_str().expect("detail").to_owned();
    assert!(detail.starts_with("the container restarted "), "{detail}");
    app.wait_for_idle_queue().await;
    app.finish().await;
}

#[tokio::test]
async fn a_certificate_close_to_expiry_fires_and_slack_and_discord_channels_get_their_shapes() {
    let app = TestApp::spawn_runtime_with(&fast()).await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "certs@example.com", "business").await;
    let (hook_url, hooks) = webhook_receiver().await;
    // Loopback: refused for every webhook kind unless an admin allows it.
    for kind in ["slack", "discord"] {
        let res = admin.post("/api/v1/notification-channels", &json!({"kind": kind, "target": hook_url})).await;
        res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
        let res = admin
            .post(
                "/api/v1/notification-channels",
                &json!({"kind": kind, "target": format!("{hook_url}?{kind}"), "allow_private": true}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    }
    let res = admin.post("/api/v1/notification-channels", &json!({"kind": "teams", "target": hook_url})).await;
    res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");

    let site = app.running_site(&admin, &customer, "expiring", "expiring.alerts.test").await;
    let id = site["id"].as_str().expect("id").to_owned();
    let rules = admin.get("/api/v1/alert-rules").await.body;
    let rule = rules.as_array().expect("rules").iter().find(|r| r["metric"] == "certificate").expect("seeded").clone();
    assert_eq!((rule["warning"].as_f64(), rule["critical"].as_f64()), (Some(14.0), Some(3.0)));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(admin.get("/api/v1/alerts?state=firing").await.body["items"], json!([]), "no certificate, no alert");

    // A certificate valid for 10 more days, stored where the ingress reads it.
    let certs = berth_integrations::tls::CertStore::new(app.config.tls_dir());
    let until = chrono::Utc::now() + chrono::Duration::days(10);
    let cert = berth_integrations::tls::self_signed_until(&["expiring.alerts.test".to_owned()], Some(until))
        .expect("certificate");
    certs.save("expiring.alerts.test", &cert).await.expect("stored");
    let alert = wait_alert(&app, &admin, &id, "certificate", "firing").await;
    assert_eq!(alert["severity"], "warning", "{alert}");
    let days = alert["value"].as_f64().expect("value");
    assert!((9.9..=10.0).contains(&days), "{alert}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let bodies = loop {
        let bodies = hooks.lock().expect("lock").clone();
        if bodies.len() >= 2 {
            break bodies;
        }
        assert!(Instant::now() < deadline, "the channels were not called: {bodies:?} {}", diagnose(&app).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    let slack = bodies.iter().find(|b| b.get("text").is_some()).expect("a Slack body");
    assert_eq!(slack["text"], "[WARNING] expiring: the certificate expires soon", "{slack}");
    assert_eq!(slack["blocks"][0]["type"], "section", "{slack}");
    assert_eq!(slack["blocks"][0]["text"]["type"], "mrkdwn", "{slack}");
    assert!(slack.get("content").is_none() && slack.get("fingerprint").is_none(), "{slack}");
    let discord = bodies.iter().find(|b| b.get("content").is_some()).expect("a Discord body");
    assert_eq!(discord["content"], "[WARNING] expiring: the certificate expires soon", "{discord}");
    let embed = &discord["embeds"][0];
    assert_eq!(embed["title"], discord["content"], "{discord}");
    assert!(
        embed["url"].as_str().is_some_and(|u| u.ends_with(alert["incident_id"].as_str().expect("id"))),
        "{discord}"
    );
    assert_eq!(embed["footer"]["text"], format!("fingerprint {}", alert["fingerprint"].as_str().expect("fp")));
    assert!(discord.get("text").is_none(), "{discord}");
    let path = format!("/api/v1/incidents/{}", alert["incident_id"].as_str().expect("id"));
    let incident = wait_json(&admin, &path, Duration::from_secs(30), |b| kinds(b).len() >= 3).await;
    assert_eq!(kinds(&incident), ["fired", "notified", "notified"], "{incident}");
    app.wait_for_idle_queue().await;
    app.finish().await;
}

#[tokio::test]
async fn a_volume_filling_past_the_plans_storage_warns_then_escalates_once() {
    let sink = SmtpSink::start().await;
    let mut vars = fast();
    vars.push(("BERTH_SMTP_URL", &sink.url));
    vars.push(("BERTH_METRICS_DISK_INTERVAL_SECONDS", "1"));
    let app = TestApp::spawn_runtime_with(&vars).await;
    // A tiny plan: 2 MiB of storage.
    app.db
        .execute(Statement::from_string(
            app.db.get_database_backend(),
            "UPDATE plans SET storage_mb = 2 WHERE id = 'starter'".to_owned(),
        ))
        .await
        .expect("tiny plan");
    let admin = app.admin().await;
    let customer = app.customer(&admin, "disk@example.com", "starter").await;
    let owner = app.customer_user(&admin, &customer, "owner@disk.example").await;
    let res =
        owner.post("/api/v1/notification-channels", &json!({"kind": "email", "target": "owner@disk.example"})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let site = app.running_site(&admin, &customer, "hoarder", "hoarder.alerts.test").await;
    let id = site["id"].as_str().expect("id").to_owned();

    // Measured against the plan, in the usage API.
    let query = format!("/api/v1/sites/{id}/metrics?series=disk_bytes,disk_limit_bytes");
    let body = super::wait_metrics(&app, &owner, &query, Duration::from_secs(30), |b| {
        !super::values(b, "disk_bytes").is_empty()
    })
    .await;
    assert!(super::values(&body, "disk_limit_bytes").iter().all(|l| *l == 2.0 * 1024.0 * 1024.0), "{body}");
    let first = super::values(&body, "disk_bytes")[0];
    assert!(first > 0.0 && first < 0.5 * 1024.0 * 1024.0, "a fresh volume holds a page: {body}");
    assert_eq!(owner.get("/api/v1/alerts?state=firing").await.body["items"], json!([]));

    // 1.7 MiB more: past 80 %, below 90 % → warning.
    let name = app.scope().names.container(id.parse().expect("uuid"));
    let dd = |file: &str, kib: u32| {
        vec![
            "/bin/busybox".to_owned(),
            "dd".to_owned(),
            "if=/dev/zero".to_owned(),
            format!("of=/srv/www/{file}"),
            "bs=1024".to_owned(),
            format!("count={kib}"),
        ]
    };
    let argv = dd("one.bin", 1700);
    let (code, out) = app.exec(&name, &argv.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(code, 0, "{out}");
    let alert = wait_alert(&app, &owner, &id, "disk", "firing").await;
    assert_eq!(alert["severity"], "warning", "{alert}");
    let percent = alert["value"].as_f64().expect("value");
    assert!((80.0..90.0).contains(&percent), "{alert}");
    let mails = sink.wait_for(1).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("Subject: [WARNING] hoarder: the volume is nearly full"), "{}", mails[0]);

    // Beyond the plan: critical, one escalation notice, however long it stays there.
    let argv = dd("two.bin", 700);
    let (code, out) = app.exec(&name, &argv.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(code, 0, "{out}");
    let incident_id = alert["incident_id"].as_str().expect("incident").to_owned();
    let incident = wait_json(&owner, &format!("/api/v1/incidents/{incident_id}"), Duration::from_secs(60), |b| {
        b["severity"] == "critical" && kinds(b).iter().filter(|k| *k == "notified").count() == 2
    })
    .await;
    assert_eq!(kinds(&incident), ["fired", "notified", "escalated", "notified"], "{incident}");
    let mails = sink.wait_for(2).await;
    assert_eq!(mails.len(), 2, "{mails:?}");
    // Long header lines are folded: unfold before reading the subject.
    let unfolded: Vec<String> = mails.iter().map(|m| m.replace("\r\n ", " ").replace("\n ", " ")).collect();
    assert!(
        unfolded
            .iter()
            .any(|m| m.contains("Subject: [CRITICAL] hoarder: the volume is nearly full (escalated from warning)")),
        "{mails:?}"
    );
    let over = wait_alert(&app, &owner, &id, "disk", "firing").await;
    assert!(over["value"].as_f64().expect("value") > 100.0, "over the plan: {over}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sink.messages().len(), 2, "one escalation, no repeats");
    app.wait_for_idle_queue().await;
    app.finish().await;
}
