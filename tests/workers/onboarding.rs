//! The onboarding steps against real services: PowerDNS, pebble, an SMTP sink, and the app.

use std::sync::Arc;

use berth_core::config::Config;
use berth_core::flows::onboarding::Subject;
use berth_workers::flows::onboarding::steps;
use berth_workers::Env;
use reqwest::StatusCode;
use serde_json::json;

use berth_integrations::dns::{DnsProvider, PowerDns};

use crate::support::services::{free_port, Pebble, PowerDnsServer, SmtpSink};
use crate::support::TestApp;

const SECRET: &str = "whsec-onboarding-test-0123456789";

/// A signup through the real webhook, returning the onboarding subject.
async fn signed_up(app: &TestApp, sub: &str) -> Subject {
    let res = app.signup_webhook(SECRET, &json!({"id": format!("evt_{sub}"), "email": format!("owner@{sub}.example"), "company_name": "Shop & Co", "plan": "starter", "subdomain": sub})).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    let admin = app.admin().await;
    let users = admin.get(&format!("/api/v1/customers/{}/users", res.str("customer_id"))).await;
    Subject {
        customer_id: res.str("customer_id").parse().expect("uuid"),
        user_id: users.body[0]["id"].as_str().expect("user").parse().expect("uuid"),
        site_id: res.str("site_id").parse().expect("uuid"),
        host: res.str("host"),
    }
}

/// The PowerDNS zone the tests' sites live in, read through Berth's own provider.
fn hosting_zone(pdns: &PowerDnsServer) -> PowerDns {
    PowerDns::new(
        url::Url::parse(&pdns.api_url).expect("url"),
        berth_core::config::Secret::new(&pdns.api_key),
        "localhost",
        "hosting.test",
    )
}

/// A received message as a mail client shows it (quoted-printable undone), and the token of the
/// set-password link in it, which must point at `base`.
fn welcome_link(mail: &str, base: &str) -> (String, String) {
    let raw = mail.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let prefix = format!("{base}/set-password?token=");
    let token = raw
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&prefix))
        .map(|t| t.trim_end_matches(['"', '>', '<']).to_owned())
        .unwrap_or_else(|| panic!("no set-password link to {base} in {raw}"));
    (raw, token)
}

/// The worker environment the steps run in, with `extra` settings over the app's.
fn edges(app: &TestApp, extra: &[(&str, String)]) -> Env {
    let mut vars: Vec<(String, String)> = vec![
        ("BERTH_DATA_DIR".into(), app.config.server.data_dir.display().to_string()),
        ("BERTH_BASE_DOMAIN".into(), "hosting.test".into()),
        ("BERTH_PUBLIC_URL".into(), app.base.clone()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let config = Config::load(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())).expect("config");
    let secret =
        app.config.server.secret_key.as_ref().expect("test apps have a secret key").expose().as_bytes().to_vec();
    let keys = Arc::new(berth_core::crypto::Keys::derive(&secret));
    Env::new(app.db.clone(), Arc::new(config), keys, None, prometheus::Registry::new()).expect("worker environment")
}

#[tokio::test]
async fn each_step_is_idempotent_and_the_welcome_link_works() {
    let app = TestApp::spawn_with(&[("BERTH_WEBHOOK_SECRET", SECRET), ("BERTH_BASE_DOMAIN", "hosting.test")]).await;
    let pdns = PowerDnsServer::start().await;
    let sink = SmtpSink::start().await;
    let edges = edges(
        &app,
        &[
            ("BERTH_DNS_PROVIDER", "powerdns".into()),
            ("BERTH_PDNS_API_URL", pdns.api_url.clone()),
            ("BERTH_PDNS_API_KEY", pdns.api_key.clone()),
            ("BERTH_DNS_TARGET", "192.0.2.80".into()),
            ("BERTH_SMTP_URL", sink.url.clone()),
        ],
    );
    let subject = signed_up(&app, "shop").await;
    // This test runs the steps itself; the onboarding job the signup enqueued must not run.
    app.discard_jobs().await;

    // DNS: one record, however often the step runs.
    for _ in 0..2 {
        steps::dns(&edges, &subject).await.expect("dns step");
    }
    assert_eq!(
        edges.dns.addresses("shop.hosting.test").await.expect("read"),
        vec!["192.0.2.80".parse::<std::net::IpAddr>().expect("ip")]
    );

    // Certificate (self-signed: no ACME configured), issued once, stored privately.
    assert_eq!(steps::certificate(&edges, &subject).await.expect("cert"), "issued (SelfSigned)");
    assert_eq!(steps::certificate(&edges, &subject).await.expect("cert"), "already issued (SelfSigned)");
    let (_, key) = edges.certs.paths("shop.hosting.test");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).expect("key").permissions().mode() & 0o777, 0o600);
    }

    // Welcome e-mail with a working one-time link.
    steps::welcome(&edges, &subject, "<onboarding-test@berth>").await.expect("welcome");
    let mails = sink.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    let (raw, token) = welcome_link(&mails[0], &app.base);
    assert!(raw.contains("To: owner@shop.example"), "{raw}");
    let c = app.client();
    assert_eq!(c.get(&format!("/set-password?token={token}")).await.status, StatusCode::OK);
    let set = c.post("/api/v1/auth/set-password", &json!({"token": token, "password": "Owner-Password-42"})).await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{}", set.text);
    let mut portal = app.client();
    portal.login("owner@shop.example", "Owner-Password-42").await;
    let sites = portal.get("/api/v1/sites").await;
    assert_eq!(sites.body["items"][0]["domains"][0], "shop.hosting.test");

    steps::finish(&edges, &subject).await.expect("finish");
    let audit = app.admin().await.get("/api/v1/audit?action=customer.onboarded").await;
    assert_eq!(audit.body["items"].as_array().expect("items").len(), 1);
}

#[tokio::test]
async fn acme_certificate_step_against_pebble() {
    let app = TestApp::spawn_with(&[("BERTH_WEBHOOK_SECRET", SECRET), ("BERTH_BASE_DOMAIN", "hosting.test")]).await;
    let pdns = PowerDnsServer::start().await;
    let http_port = free_port();
    let pebble = Pebble::start(pdns.dns_port, http_port).await;
    let edges = edges(
        &app,
        &[
            ("BERTH_DNS_PROVIDER", "powerdns".into()),
            ("BERTH_PDNS_API_URL", pdns.api_url.clone()),
            ("BERTH_PDNS_API_KEY", pdns.api_key.clone()),
            ("BERTH_ACME_DIRECTORY_URL", pebble.directory_url.clone()),
            ("BERTH_ACME_CA_ROOT", pebble.ca_root.display().to_string()),
        ],
    );
    let subject = signed_up(&app, "secure").await;
    app.discard_jobs().await;
    steps::dns(&edges, &subject).await.expect("dns → 127.0.0.1");
    // Serve the challenge directory on pebble's validation port, as the ingress does.
    let dir = edges.challenges.dir().to_path_buf();
    let responder = tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/.well-known/acme-challenge/{token}",
            axum::routing::get(move |axum::extract::Path(token): axum::extract::Path<String>| {
                let dir = dir.clone();
                async move { tokio::fs::read_to_string(dir.join(token)).await.map_err(|_| StatusCode::NOT_FOUND) }
            }),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", http_port)).await.expect("bind");
        let _ = axum::serve(listener, app).await;
    });
    assert_eq!(steps::certificate(&edges, &subject).await.expect("acme"), "issued (Acme)");
    assert_eq!(steps::certificate(&edges, &subject).await.expect("acme"), "already issued (Acme)");
    responder.abort();
}

#[tokio::test]
async fn own_domains_are_left_to_the_customer() {
    let app = TestApp::spawn_with(&[("BERTH_WEBHOOK_SECRET", SECRET), ("BERTH_BASE_DOMAIN", "hosting.test")]).await;
    let edges = edges(&app, &[]);
    let mut subject = signed_up(&app, "own").await;
    app.discard_jobs().await;
    subject.host = "www.own-domain.example".into();
    let summary = steps::dns(&edges, &subject).await.expect("dns");
    assert!(summary.starts_with("skipped"), "{summary}");
}

/// The whole chain as the website drives it: signed webhook → onboarding flow run by the worker
/// pool → DNS record, e-mail with a link that sets the password → the customer signs in.
#[tokio::test]
async fn signup_webhook_onboards_end_to_end() {
    let pdns = PowerDnsServer::start().await;
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with_workers(&[
        ("BERTH_WEBHOOK_SECRET", SECRET),
        ("BERTH_BASE_DOMAIN", "hosting.test"),
        ("BERTH_DNS_PROVIDER", "powerdns"),
        ("BERTH_PDNS_API_URL", &pdns.api_url),
        ("BERTH_PDNS_API_KEY", &pdns.api_key),
        ("BERTH_DNS_TARGET", "192.0.2.99"),
        ("BERTH_SMTP_URL", &sink.url),
    ])
    .await;
    let res = app.signup_webhook(SECRET, &json!({"id": "evt_e2e", "email": "e2e@shop.example", "company_name": "E2E", "plan": "starter", "subdomain": "e2e"})).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    let flow_id = res.str("flow_id");
    assert!(res.str("status_url").ends_with(&format!("/api/v1/flows/{flow_id}")));

    // Poll the run until it ends (generous deadline; no timing assertion).
    use sea_orm::EntityTrait;
    let run_id: uuid::Uuid = flow_id.parse().expect("uuid");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let run = loop {
        let run = berth_core::entities::flow_runs::Entity::find_by_id(run_id)
            .one(&app.db)
            .await
            .expect("query")
            .expect("run");
        if run.state != berth_core::entities::flow_runs::FlowState::Running || std::time::Instant::now() > deadline {
            break run;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(run.state, berth_core::entities::flow_runs::FlowState::Succeeded, "{run:?}");

    let dns = hosting_zone(&pdns);
    assert_eq!(
        dns.addresses("e2e.hosting.test").await.expect("read"),
        vec!["192.0.2.99".parse::<std::net::IpAddr>().expect("ip")]
    );
    let mails = sink.wait_for(1).await;
    assert_eq!(mails.len(), 1, "exactly one welcome e-mail");
    let (_, token) = welcome_link(&mails[0], &app.config.server.public_link(""));
    let c = app.client();
    let set = c.post("/api/v1/auth/set-password", &json!({"token": token, "password": "E2e-Owner-Password-1"})).await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{}", set.text);
    let mut portal = app.client();
    portal.login("e2e@shop.example", "E2e-Owner-Password-1").await;
    assert_eq!(portal.get("/api/v1/sites").await.body["items"][0]["domains"][0], "e2e.hosting.test");
}

/// `kill -9` at every step boundary: a real `berth worker` process (with the real Docker engine
/// under a prefix of this test's own) dies abruptly before each onboarding step's first attempt
/// and is started again. The flow still completes, with one customer, one container, one DNS
/// record and one e-mail.
#[tokio::test]
async fn a_worker_killed_at_every_step_boundary_resumes_without_doubling() {
    let pdns = PowerDnsServer::start().await;
    let sink = SmtpSink::start().await;
    let settings = [
        ("BERTH_WEBHOOK_SECRET", SECRET.to_owned()),
        ("BERTH_BASE_DOMAIN", "hosting.test".to_owned()),
        ("BERTH_DNS_PROVIDER", "powerdns".to_owned()),
        ("BERTH_PDNS_API_URL", pdns.api_url.clone()),
        ("BERTH_PDNS_API_KEY", pdns.api_key.clone()),
        ("BERTH_DNS_TARGET", "192.0.2.77".to_owned()),
        ("BERTH_SMTP_URL", sink.url.clone()),
    ];
    let refs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The app serves the webhook; onboarding runs only in the separate worker processes.
    let app = TestApp::spawn_with(&refs).await;
    let subject = signed_up(&app, "crashy").await;

    crate::support::runtime::ensure_site_image().await;
    let docker = DockerLeftovers { prefix: format!("bt{}", &uuid::Uuid::new_v4().simple().to_string()[..10]) };
    let cfg = &app.config;
    let mut env: Vec<(String, String)> = settings.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    env.extend([
        ("BERTH_DATABASE_URL".into(), cfg.server.database_url.as_ref().expect("db").expose().to_owned()),
        ("BERTH_SECRET_KEY".into(), cfg.server.secret_key.as_ref().expect("key").expose().to_owned()),
        ("BERTH_DATA_DIR".into(), cfg.server.data_dir.display().to_string()),
        ("BERTH_PUBLIC_URL".into(), app.base.clone()),
        // A short lease, so the job of a dead worker is handed on quickly.
        ("BERTH_WORKER_LEASE_SECONDS".into(), "1".into()),
        ("BERTH_LOG".into(), "warn".into()),
        ("BERTH_FAULT_CRASH_BEFORE_STEPS".into(), "site,dns,certificate,health,welcome,finish".into()),
        // The worker's reconciler creates the site's container on the real engine, under this
        // test's own prefix; no nginx (the health step is then skipped).
        ("BERTH_DOCKER_HOST".into(), "unix:///var/run/docker.sock".into()),
        ("BERTH_DOCKER_PREFIX".into(), docker.prefix.clone()),
        ("BERTH_INGRESS_MODE".into(), "off".into()),
    ]);
    let run_state = || async {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        berth_core::entities::flow_runs::Entity::find()
            .filter(berth_core::entities::flow_runs::Column::CustomerId.eq(subject.customer_id))
            .one(&app.db)
            .await
            .expect("query")
            .expect("run")
            .state
    };
    let mut crashes = 0;
    for _ in 0..10 {
        let mut worker = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth"));
        worker.arg("worker").env_clear().envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if let Ok(path) = std::env::var("PATH") {
            worker.env("PATH", path);
        }
        let mut child = worker
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn berth worker");
        // Either the fault hook kills it, or the flow finishes and we stop it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let died = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break Some(status);
            }
            if run_state().await != berth_core::entities::flow_runs::FlowState::Running
                || std::time::Instant::now() > deadline
            {
                break None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        match died {
            Some(status) => {
                assert!(!status.success(), "the worker only exits here by the injected crash");
                crashes += 1;
            }
            None => {
                // Done: stop the last worker gracefully, so it releases whatever it holds (the
                // scheduler may have started housekeeping meanwhile).
                if let Some(pid) = child.id() {
                    let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
                }
                let _ = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait()).await;
                break;
            }
        }
    }
    assert_eq!(crashes, 6, "one crash at each of the six boundaries");
    assert_eq!(run_state().await, berth_core::entities::flow_runs::FlowState::Succeeded);

    let admin = app.admin().await;
    assert_eq!(admin.get("/api/v1/customers").await.body["items"].as_array().expect("items").len(), 1);
    let dns = hosting_zone(&pdns);
    assert_eq!(dns.addresses("crashy.hosting.test").await.expect("read").len(), 1);
    // Give a (wrongly) duplicated message every chance to arrive before counting.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 1, "exactly one welcome e-mail");
    let onboarded = admin.get("/api/v1/audit?action=customer.onboarded").await;
    assert_eq!(onboarded.body["items"].as_array().expect("items").len(), 1);
    let names = berth_runtime::names::Names::new(&docker.prefix);
    let engine = crate::support::runtime::engine();
    use berth_runtime::engine::Engine;
    let containers = engine.containers(&names.label_filter()).await.expect("list containers");
    assert_eq!(containers.len(), 1, "exactly one container: {containers:?}");
    // No worker is left to run what the scheduler enqueued while this test ran.
    app.discard_jobs().await;
}

/// Issue 5's happy path with everything real: a signed webhook, and within seconds the site
/// answers through nginx, its DNS record exists in PowerDNS, the e-mail arrives, the link sets a
/// password, and the customer signs in to the portal and sees the site.
#[tokio::test]
async fn signup_brings_a_site_up_through_nginx() {
    let pdns = PowerDnsServer::start().await;
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_runtime_with(&[
        ("BERTH_WEBHOOK_SECRET", SECRET),
        ("BERTH_BASE_DOMAIN", "hosting.test"),
        ("BERTH_DNS_PROVIDER", "powerdns"),
        ("BERTH_PDNS_API_URL", &pdns.api_url),
        ("BERTH_PDNS_API_KEY", &pdns.api_key),
        ("BERTH_SMTP_URL", &sink.url),
    ])
    .await;
    let subject = signed_up(&app, "live").await;
    let run_id = {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        berth_core::entities::flow_runs::Entity::find()
            .filter(berth_core::entities::flow_runs::Column::CustomerId.eq(subject.customer_id))
            .one(&app.db)
            .await
            .expect("query")
            .expect("onboarding run")
            .id
    };
    let admin = app.admin().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let run = loop {
        let run = admin.get(&format!("/api/v1/flows/{run_id}")).await;
        assert_eq!(run.status, StatusCode::OK, "{}", run.text);
        if run.body["state"] != "running" || std::time::Instant::now() > deadline {
            break run;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(run.body["state"], "succeeded", "{}", run.text);
    let steps: Vec<&str> =
        run.body["steps"].as_array().expect("steps").iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(steps, ["customer", "site", "dns", "certificate", "health", "welcome", "finish"]);

    // The site's own page, through nginx, by its host name.
    let page = app.wait_ingress("live.hosting.test", 200).await;
    assert!(page.contains("live"), "{page}");
    let dns = hosting_zone(&pdns);
    assert_eq!(dns.addresses("live.hosting.test").await.expect("read").len(), 1);
    let mails = sink.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    let (_, token) = welcome_link(&mails[0], &app.config.server.public_link(""));
    let set = app
        .client()
        .post("/api/v1/auth/set-password", &json!({"token": token, "password": "Live-Owner-Password-1"}))
        .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{}", set.text);
    let mut portal = app.client();
    portal.login("owner@live.example", "Live-Owner-Password-1").await;
    let sites = portal.get("/api/v1/sites").await;
    assert_eq!(sites.body["items"][0]["status"], "running");
    app.finish().await;
}

/// Removes this test's Docker objects, whatever happened to the test.
struct DockerLeftovers {
    prefix: String,
}

impl Drop for DockerLeftovers {
    fn drop(&mut self) {
        let filter = berth_runtime::names::Names::new(&self.prefix).label_filter();
        let _ = std::thread::spawn(move || {
            use berth_runtime::engine::Engine;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let e = crate::support::runtime::engine();
                for c in e.containers(&filter).await.unwrap_or_default() {
                    let _ = e.remove(&c.id).await;
                }
                for n in e.networks(&filter).await.unwrap_or_default() {
                    let _ = e.remove_network(&n).await;
                }
                for v in e.volumes(&filter).await.unwrap_or_default() {
                    let _ = e.remove_volume(&v).await;
                }
            });
        })
        .join();
    }
}

/// Issue 9 item 5: a signup whose template image is not on the host fails the `site` step at
/// once with the reason (not after waiting out the step's 90 s), and the flow retries it later.
#[tokio::test]
async fn a_missing_template_image_fails_the_site_step_with_its_reason() {
    let app =
        TestApp::spawn_runtime_with(&[("BERTH_WEBHOOK_SECRET", SECRET), ("BERTH_BASE_DOMAIN", "hosting.test")]).await;
    let template = format!("berth-test/{}:absent", app.scope().names.instance());
    let started = std::time::Instant::now();
    let res = app.signup_webhook(SECRET, &json!({"id": "evt_absent", "email": "owner@absent.example", "company_name": "Absent", "plan": "starter", "subdomain": "absent", "template": template})).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    let customer: uuid::Uuid = res.str("customer_id").parse().expect("uuid");
    let run_id = {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        berth_core::entities::flow_runs::Entity::find()
            .filter(berth_core::entities::flow_runs::Column::CustomerId.eq(customer))
            .one(&app.db)
            .await
            .expect("query")
            .expect("onboarding run")
            .id
    };
    let admin = app.admin().await;
    let step = loop {
        let run = admin.get(&format!("/api/v1/flows/{run_id}")).await;
        assert_eq!(run.status, StatusCode::OK, "{}", run.text);
        let site = run.body["steps"].as_array().expect("steps").iter().find(|s| s["name"] == "site").cloned();
        if let Some(step) = site.filter(|s| s["error"].is_string()) {
            break step;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "no error on the site step: {}", run.text);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let error = step["error"].as_str().expect("error");
    assert!(error.contains("the site failed") && error.contains(&template) && error.contains("not present"), "{step}");
    assert_ne!(step["state"], "succeeded", "{step}");
    let site = admin.get(&format!("/api/v1/sites/{}", res.str("site_id"))).await;
    assert_eq!(site.body["status"], "failed", "{}", site.text);
    // The flow's retry stays queued; nothing is left to run it.
    app.discard_jobs().await;
    app.finish().await;
}
