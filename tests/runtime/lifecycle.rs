//! Updates with health-checked replacement and no dropped request, stop/start and their speed,
//! suspension, deletion.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use super::{assert_hardened, count_volumes};
use crate::support::runtime::{engine, TestImage, Traffic};
use crate::support::TestApp;
use berth_runtime::engine::Engine;

const BUSINESS: (i64, i64, i64) = (512, 1000, 256);

#[tokio::test]
async fn a_broken_update_keeps_the_old_container_serving() {
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "update@example.com", "business").await;
    let site = app.running_site(&admin, &c, "upd", "upd.update.test").await;
    let id = site["id"].as_str().expect("id").to_owned();
    let old_container = site["container_id"].as_str().expect("container").to_owned();
    app.wait_ingress("upd.update.test", 200).await;

    // A good update (environment): a new container, hardened, takes over.
    let res = admin.patch(&format!("/api/v1/sites/{id}"), &json!({"env": {"GREETING": "hello"}})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let site = app
        .wait_site(&admin, &id, Duration::from_secs(60), |s| {
            s["status"] == "running" && s["container_id"].as_str().is_some_and(|c| c != old_container)
        })
        .await;
    assert_hardened(&app, &site, BUSINESS).await;
    let env = app
        .inspect(&app.scope().names.container(id.parse().expect("uuid")))
        .await
        .config
        .and_then(|c| c.env)
        .unwrap_or_default();
    assert!(env.contains(&"GREETING=hello".to_owned()), "{env:?}");
    let serving = site["container_id"].as_str().expect("container").to_owned();

    // A broken one (an image that is not there): the running container stays and serves.
    let res = admin.patch(&format!("/api/v1/sites/{id}"), &json!({"image": "berth-test/broken:1"})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let site = app.wait_site(&admin, &id, Duration::from_secs(60), |s| s["last_error"].is_string()).await;
    assert_eq!(site["status"], "running", "{site}");
    assert_eq!(site["container_id"], serving.as_str(), "{site}");
    assert!(site["status_reason"].as_str().unwrap_or("").contains("last update failed"), "{site}");
    assert!(site["last_error"].as_str().unwrap_or("").contains("berth-test/broken:1"), "{site}");
    app.wait_ingress("upd.update.test", 200).await;
    app.finish().await;
}

#[tokio::test]
async fn stop_start_suspend_and_reactivate() {
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "suspend@example.com", "business").await;
    let user = app.customer_user(&admin, &c, "owner@suspend.test").await;
    let s1 = app.running_site(&user, &c, "one", "one.suspend.test").await;
    let s2 = app.running_site(&user, &c, "two", "two.suspend.test").await;
    let id1 = s1["id"].as_str().expect("id").to_owned();
    let id2 = s2["id"].as_str().expect("id").to_owned();

    // The owner stops and starts a site (audited).
    let res = user.post(&format!("/api/v1/sites/{id1}/stop"), &json!({})).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    app.wait_site(&user, &id1, Duration::from_secs(30), |s| s["status"] == "stopped").await;
    app.wait_ingress("one.suspend.test", 404).await;
    let res = user.post(&format!("/api/v1/sites/{id1}/start"), &json!({})).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    app.wait_running(&user, &id1).await;
    let audit = admin.get("/api/v1/audit?action=site.stop").await;
    assert!(audit.text.contains("owner@suspend.test"), "{}", audit.text);

    // Another tenant cannot act on these sites: 404.
    let other = app.customer(&admin, "other@suspend.test", "business").await;
    let stranger = app.customer_user(&admin, &other, "stranger@suspend.test").await;
    stranger
        .post(&format!("/api/v1/sites/{id1}/stop"), &json!({}))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    stranger.get(&format!("/api/v1/sites/{id1}/logs")).await.assert_problem(StatusCode::NOT_FOUND, "not-found");

    // Suspension stops every site of the customer; reactivation starts them again.
    let res = admin.patch(&format!("/api/v1/customers/{c}"), &json!({"status": "suspended"})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    for id in [&id1, &id2] {
        app.wait_site(&admin, id, Duration::from_secs(30), |s| s["status"] == "suspended").await;
    }
    assert!(app.containers().await.iter().all(|c| !c.running()), "a suspended customer's container runs");
    app.wait_ingress("two.suspend.test", 404).await;
    let res = admin.patch(&format!("/api/v1/customers/{c}"), &json!({"status": "active"})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    for id in [&id1, &id2] {
        app.wait_running(&admin, id).await;
    }
    app.wait_ingress("two.suspend.test", 200).await;
    app.finish().await;
}

#[tokio::test]
async fn delete_removes_container_and_last_network_and_keeps_the_volume() {
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "delete@example.com", "business").await;
    let site = app.running_site(&admin, &c, "gone", "gone.delete.test").await;
    let id = site["id"].as_str().expect("id").to_owned();
    assert_eq!(count_volumes(&app).await, 1);
    let res = admin.delete(&format!("/api/v1/sites/{id}")).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while admin.get(&format!("/api/v1/sites/{id}")).await.status != StatusCode::NOT_FOUND {
        assert!(std::time::Instant::now() < deadline, "the site was not deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(app.containers().await.is_empty(), "container left after delete");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !engine().networks(&app.scope().filter()).await.expect("networks").is_empty() {
        assert!(std::time::Instant::now() < deadline, "the customer's network was not removed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(count_volumes(&app).await, 1, "the data volume is kept without purge");
    let audit = admin.get("/api/v1/audit?action=site.deleted").await;
    assert!(audit.text.contains(&id), "{}", audit.text);
    app.finish().await;
}

/// Issue 9, item 2: an update starts the new container, waits until it answers, switches nginx
/// to it, lets requests in flight finish, and only then stops the old one. Visitors notice
/// nothing: not one failed or slow request over 30 s that span an environment and an image
/// update.
#[tokio::test]
async fn updates_drop_and_delay_no_request() {
    const HOST: &str = "rolling.update.test";
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "rolling@example.com", "business").await;
    let site = app.running_site(&admin, &c, "rolling", HOST).await;
    let id = site["id"].as_str().expect("id").to_owned();
    app.wait_ingress_settled(HOST, 200).await;
    // The same image under another name: for Berth, an image update like any other.
    let v2 = TestImage::retag(app.scope(), "v2").await;

    let started = Instant::now();
    let traffic = Traffic::start(app.scope().ingress, HOST, 4);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut serving = site["container_id"].as_str().expect("container").to_owned();
    for change in [json!({"env": {"GREETING": "hello"}}), json!({"image": v2.reference})] {
        let res = admin.patch(&format!("/api/v1/sites/{id}"), &change).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        let site = app
            .wait_site(&admin, &id, Duration::from_secs(60), |s| {
                s["status"] == "running" && s["container_id"].as_str().is_some_and(|c| c != serving)
            })
            .await;
        assert!(site["last_error"].is_null(), "{site}");
        serving = site["container_id"].as_str().expect("container").to_owned();
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    if let Some(rest) = Duration::from_secs(30).checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let report = traffic.stop().await;
    assert!(report.requests > 300, "too few requests to prove anything: {report:?}");
    assert!(report.failed.is_empty(), "requests failed across the updates: {report:?}");
    assert!(report.slow.is_empty(), "requests took over {:?} across the updates: {report:?}", Traffic::SLOW);

    // One container is left, the new one, under the site's name; the old ones are gone.
    let containers = app.containers().await;
    assert_eq!(containers.len(), 1, "{:?}", containers.iter().map(|c| &c.name).collect::<Vec<_>>());
    assert_eq!(containers[0].id, serving);
    assert_eq!(containers[0].name, app.scope().names.container(id.parse().expect("uuid")));
    app.finish().await;
}

/// Issue 9, item 3: the default image stops at once when asked (it used to ignore SIGTERM as
/// PID 1, so every stop waited for Docker's 10 s kill).
#[tokio::test]
async fn stop_and_restart_take_well_under_two_seconds() {
    const HOST: &str = "quick.stop.test";
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "quick@example.com", "business").await;
    let site = app.running_site(&admin, &c, "quick", HOST).await;
    let id = site["id"].as_str().expect("id").to_owned();
    let name = app.scope().names.container(id.parse().expect("uuid"));
    app.wait_ingress(HOST, 200).await;

    // Restart through the API: it answers once the container is running again.
    let t = Instant::now();
    let res = admin.post(&format!("/api/v1/sites/{id}/restart"), &json!({})).await;
    let restart = t.elapsed();
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    app.wait_ingress(HOST, 200).await;

    // Stop through the API: the reconciler stops the container.
    let t = Instant::now();
    let res = admin.post(&format!("/api/v1/sites/{id}/stop"), &json!({})).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    let e = engine();
    while e.inspect(&name).await.expect("inspect").is_some_and(|d| d.running) {
        assert!(t.elapsed() < Duration::from_secs(30), "the container was not stopped");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let stop = t.elapsed();
    println!("MEASURE site restart {restart:?}, site stop {stop:?}");
    // Typically a few hundred milliseconds; the bound leaves room for a busy test machine.
    assert!(restart < Duration::from_secs(2), "a restart took {restart:?}");
    assert!(stop < Duration::from_secs(2), "a stop took {stop:?}");
    // Stopped by the signal, not killed after a timeout.
    let state = app.inspect(&name).await.state.expect("state");
    assert_eq!(state.exit_code, Some(143), "exit status: {state:?}");
    app.wait_site(&admin, &id, Duration::from_secs(30), |s| s["status"] == "stopped").await;
    app.finish().await;
}

/// Issue 9 item 5: a site whose image is missing is failed with the reason, and is not tried
/// again at every pass: once the image appears it waits out its backoff (10 s after the first
/// failure; the reconciler runs every second here), then runs, and the error is cleared. A
/// failed update then shows the image that actually runs next to the wanted one.
#[tokio::test]
async fn a_missing_image_backs_off_then_recovers_and_the_running_image_is_shown() {
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "later@example.com", "business").await;
    let reference = format!("berth-test/{}:later", app.scope().names.instance());
    let res = admin
        .post(
            "/api/v1/sites",
            &json!({"customer_id": c, "name": "later", "image": reference, "domains": ["later.backoff.test"]}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let id = res.str("id");
    // A sibling with the same missing image, whose owner asks for a start once it is there.
    let res = admin.post("/api/v1/sites", &json!({"customer_id": c, "name": "again", "image": reference})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let again = res.str("id");
    let site = app.wait_site(&admin, &id, Duration::from_secs(30), |s| s["status"] == "failed").await;
    assert!(site["last_error"].as_str().unwrap_or("").contains("not present"), "{site}");
    assert!(site["running_image"].is_null(), "{site}");
    app.wait_site(&admin, &again, Duration::from_secs(30), |s| s["status"] == "failed").await;

    // The image appears (same reference, so the site does not change): not retried at once.
    let image = TestImage::retag(app.scope(), "later").await;
    let appeared = Instant::now();
    while appeared.elapsed() < Duration::from_secs(4) {
        let s = admin.get(&format!("/api/v1/sites/{id}")).await.body;
        assert_eq!(s["status"], "failed", "retried within the backoff: {s}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Asking for a start again is a change: tried at once, long before the backoff ends.
    let res = admin.post(&format!("/api/v1/sites/{again}/start"), &json!({})).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    let asked = Instant::now();
    app.wait_running(&admin, &again).await;
    assert!(asked.elapsed() < Duration::from_secs(4), "a start waits for no backoff");
    // Then it is, and a success clears the error.
    let site = app.wait_site(&admin, &id, Duration::from_secs(30), |s| s["status"] == "running").await;
    assert!(appeared.elapsed() < Duration::from_secs(15), "the first retry comes after about 10 s");
    assert!(site["last_error"].is_null(), "{site}");
    assert!(site["status_reason"].is_null(), "{site}");
    assert_eq!(site["running_image"], reference.as_str(), "{site}");
    app.wait_ingress("later.backoff.test", 200).await;

    // A failed update: the previous image keeps serving, and the site says which one runs.
    let res = admin.patch(&format!("/api/v1/sites/{id}"), &json!({"image": "berth-test/broken:2"})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let site = app.wait_site(&admin, &id, Duration::from_secs(60), |s| s["last_error"].is_string()).await;
    assert_eq!(site["image"], "berth-test/broken:2", "{site}");
    assert_eq!(site["running_image"], reference.as_str(), "{site}");
    let page = admin.get(&format!("/admin/sites/{id}")).await;
    assert!(page.text.contains("not the wanted image"), "{}", page.text);
    assert!(page.text.contains(&reference), "{}", page.text);
    app.wait_ingress("later.backoff.test", 200).await;
    app.finish().await;
    drop(image);
}
