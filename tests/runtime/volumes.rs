//! Switching a site onto a fresh data volume filled from a directory (`berth_ops::volumes`, the
//! restore's last steps), and the volumes a site no longer uses (`/sites/{id}/volumes`).
//! Real Docker, real nginx, continuous traffic through it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use berth_core::access::{Caller, Scope};
use berth_runtime::engine::Engine;
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::support::runtime::{engine, Traffic};
use crate::support::TestApp;

/// The site's page, written into its current volume through its own container.
async fn write_page(app: &TestApp, site: Uuid, text: &str) {
    let container = app.scope().names.container(site);
    let script = format!("echo '{text}' > /srv/www/index.html");
    let (code, out) = app.exec(&container, &["/bin/busybox", "sh", "-c", &script]).await;
    assert_eq!(code, 0, "{out}");
}

async fn volumes_of(app: &TestApp) -> Vec<String> {
    engine().volumes(&app.scope().filter()).await.expect("volumes")
}

/// The volume the site's container mounts at /srv/www.
async fn mounted(app: &TestApp, site: Uuid) -> Option<String> {
    let c = app.inspect(&app.scope().names.container(site)).await;
    c.mounts.unwrap_or_default().into_iter().find(|m| m.destination.as_deref() == Some("/srv/www")).and_then(|m| m.name)
}

fn customer_caller(customer: &str) -> Caller {
    Caller { scope: Scope::Customer(customer.parse().expect("uuid")), ..Caller::system("another customer") }
}

/// A directory with new content for the site: a page and a nested file, readable by the site's
/// user (65534).
fn new_content(dir: &Path) {
    std::fs::write(dir.join("index.html"), "restored content v2\n").expect("write");
    std::fs::create_dir(dir.join("assets")).expect("mkdir");
    std::fs::write(dir.join("assets/app.css"), "body{}\n").expect("write");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[tokio::test]
async fn a_site_switches_onto_a_filled_volume_without_dropping_a_request() {
    const HOST: &str = "switch.volumes.test";
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "switch@volumes.test", "business").await;
    let site = app.running_site(&admin, &c, "switch", HOST).await;
    let id: Uuid = site["id"].as_str().expect("id").parse().expect("uuid");
    let original = app.scope().names.volume(id);
    write_page(&app, id, "original content v1").await;
    app.wait_ingress_settled(HOST, 200).await;
    assert!(app.wait_ingress(HOST, 200).await.contains("original content v1"));

    let source = tempfile::tempdir().expect("source");
    new_content(source.path());
    // Another customer cannot switch this site: it is not found for them.
    let other = app.customer(&admin, "other@volumes.test", "business").await;
    let err = app.ops.switch_to_copy_of(&customer_caller(&other), id, source.path()).await.expect_err("scoped");
    assert!(matches!(err, berth_ops::Error::Store(berth_core::Error::NotFound("site"))), "{err:?}");

    let traffic = Traffic::start(app.scope().ingress, HOST, 4);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let switched = app.ops.switch_to_copy_of(&Caller::system("test"), id, source.path()).await.expect("switch");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = traffic.stop().await;
    assert!(report.requests > 50, "too few requests to prove anything: {report:?}");
    assert!(report.failed.is_empty(), "requests failed across the switch: {report:?}");

    assert!(switched.checked, "{switched:?}");
    assert_eq!(switched.from, original);
    assert_ne!(switched.to, original);
    app.wait_ingress_settled(HOST, 200).await;
    let body = app.wait_ingress(HOST, 200).await;
    assert!(body.contains("restored content v2"), "{body}");
    let (_, css) = app.through_ingress_path(HOST, "/assets/app.css").await;
    assert!(css.contains("body{}"), "{css}");
    assert_eq!(mounted(&app, id).await.as_deref(), Some(switched.to.as_str()));
    let shown = admin.get(&format!("/api/v1/sites/{id}")).await;
    assert_eq!(shown.body["data_volume"], switched.to.as_str(), "{}", shown.text);

    // The old volume is still there, with its data, and listed.
    assert!(volumes_of(&app).await.contains(&original), "the old volume was removed");
    let list = admin.get(&format!("/api/v1/sites/{id}/volumes")).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let items = list.body["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{}", list.text);
    assert_eq!(items[0]["name"], original.as_str());
    assert_eq!(items[0]["reason"], "replaced_by_restore");
    let audit = admin.get("/api/v1/audit?action=site.volume_switch").await;
    assert!(audit.text.contains(&id.to_string()), "{}", audit.text);

    // Another customer's user gets 404 for the list and the discard.
    let stranger = app.customer_user(&admin, &other, "stranger@volumes.test").await;
    stranger.get(&format!("/api/v1/sites/{id}/volumes")).await.assert_problem(StatusCode::NOT_FOUND, "not-found");
    let res = stranger.delete(&format!("/api/v1/sites/{id}/volumes/{original}")).await;
    res.assert_problem(StatusCode::NOT_FOUND, "not-found");
    assert!(volumes_of(&app).await.contains(&original));
    // The volume the site uses is not a retired one: not found, never removed.
    let res = admin.delete(&format!("/api/v1/sites/{id}/volumes/{}", switched.to)).await;
    res.assert_problem(StatusCode::NOT_FOUND, "not-found");
    assert!(volumes_of(&app).await.contains(&switched.to));

    // The operator discards the old volume.
    let res = admin.delete(&format!("/api/v1/sites/{id}/volumes/{original}")).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);
    assert!(!volumes_of(&app).await.contains(&original), "the discarded volume is still there");
    let list = admin.get(&format!("/api/v1/sites/{id}/volumes")).await;
    assert_eq!(list.body["items"], serde_json::json!([]), "{}", list.text);
    let res = admin.delete(&format!("/api/v1/sites/{id}/volumes/{original}")).await;
    res.assert_problem(StatusCode::NOT_FOUND, "not-found");
    let audit = admin.get("/api/v1/audit?action=site.volume_discard").await;
    assert!(audit.text.contains(&original), "{}", audit.text);
    assert!(app.wait_ingress(HOST, 200).await.contains("restored content v2"));
    app.finish().await;
}

/// New data on which the site cannot start: its top directory is root's and private, so the
/// site's user (65534) cannot write the first page that berth/site-static's start script writes
/// when there is none, and the container exits. The switch rolls back: the old container never
/// stopped serving the old data.
#[tokio::test]
async fn a_switch_whose_container_fails_stays_on_the_old_volume() {
    const HOST: &str = "rollback.volumes.test";
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "rollback@volumes.test", "business").await;
    let site = app.running_site(&admin, &c, "rollback", HOST).await;
    let id: Uuid = site["id"].as_str().expect("id").parse().expect("uuid");
    let original = app.scope().names.volume(id);
    write_page(&app, id, "original content v1").await;
    app.wait_ingress_settled(HOST, 200).await;

    let source = tempfile::tempdir().expect("source");
    std::fs::write(source.path().join("README"), "no index.html here\n").expect("write");
    std::fs::set_permissions(source.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");

    let traffic = Traffic::start(app.scope().ingress, HOST, 4);
    let err = app.ops.switch_to_copy_of(&Caller::system("test"), id, source.path()).await.expect_err("must fail");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = traffic.stop().await;
    assert!(matches!(err, berth_ops::Error::SwitchFailed(_)), "{err:?}");
    assert!(err.to_string().contains("stays on its previous data"), "{err}");
    assert!(report.requests > 50, "too few requests to prove anything: {report:?}");
    assert!(report.failed.is_empty(), "requests failed during the failed switch: {report:?}");

    // Back on the old volume, serving the old data.
    let shown = admin.get(&format!("/api/v1/sites/{id}")).await;
    assert!(shown.body["data_volume"].is_null(), "{}", shown.text);
    assert_eq!(mounted(&app, id).await.as_deref(), Some(original.as_str()));
    let body = app.wait_ingress(HOST, 200).await;
    assert!(body.contains("original content v1"), "{body}");

    // The failed volume is kept and listed; housekeeping removes it once its time is up.
    let list = admin.get(&format!("/api/v1/sites/{id}/volumes")).await;
    let items = list.body["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{}", list.text);
    assert_eq!(items[0]["reason"], "failed_switch");
    let failed = items[0]["name"].as_str().expect("name").to_owned();
    assert!(volumes_of(&app).await.contains(&failed));
    assert_eq!(app.ops.remove_expired_volumes().await.expect("housekeeping"), 0, "not expired yet");
    app.db
        .execute(sea_orm::Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "UPDATE site_volumes SET keep_until = $1 WHERE name = $2",
            [(chrono::Utc::now() - chrono::Duration::hours(1)).into(), failed.clone().into()],
        ))
        .await
        .expect("expire");
    assert_eq!(app.ops.remove_expired_volumes().await.expect("housekeeping"), 1);
    let left = volumes_of(&app).await;
    assert!(!left.contains(&failed), "{left:?}");
    assert!(left.contains(&original), "the site's own volume must stay: {left:?}");
    let list = admin.get(&format!("/api/v1/sites/{id}/volumes")).await;
    assert_eq!(list.body["items"], serde_json::json!([]), "{}", list.text);
    assert!(app.wait_ingress(HOST, 200).await.contains("original content v1"));
    app.finish().await;
}
