//! The restore flow end to end (`POST /api/v1/sites/{id}/backups/{backup_id}/restore`): real
//! Docker and nginx with continuous traffic, the real backup job and repository.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_backup::Manifest;
use berth_core::access::Caller;
use berth_core::entities::backups;
use berth_core::types::{BackupKind, BackupStatus};
use rand::RngCore;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;
use uuid::Uuid;

use crate::support::runtime::{engine, Traffic};
use crate::support::{Client, TestApp};

/// The host directory of a site's original data volume (the tests run as root on the Docker
/// host).
async fn volume_dir(app: &TestApp, site_id: &str) -> PathBuf {
    mountpoint(&app.scope().names.volume(site_id.parse().expect("uuid"))).await
}

/// Writes `count` files of `size` random bytes under `dir/<sub>/`, spread over a few directories.
fn write_files(dir: &Path, sub: &str, count: usize, size: usize) {
    let mut rng = rand::thread_rng();
    for i in 0..count {
        let path = dir.join(sub).join(format!("d{}", i % 7)).join(format!("file-{i}.bin"));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let mut data = vec![0u8; size];
        rng.fill_bytes(&mut data);
        std::fs::write(&path, data).expect("write");
    }
}

/// Backs the site up through the backup operation and its `backup.site` job; the row once done.
async fn back_up(app: &TestApp, site_id: &str) -> backups::Model {
    let id: Uuid = site_id.parse().expect("uuid");
    let requested =
        app.ops.request_backup(&Caller::system("test"), id, BackupKind::Manual).await.expect("request a backup");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let row = backups::Entity::find_by_id(requested.backup.id).one(&app.db).await.expect("db").expect("row");
        if matches!(row.status, BackupStatus::Succeeded | BackupStatus::Failed) {
            return row;
        }
        assert!(Instant::now() < deadline, "the backup did not finish: {row:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Waits until a flow run finished (succeeded or failed) and returns it with its steps.
async fn finished_run(client: &Client, run_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let res = client.get(&format!("/api/v1/flows/{run_id}")).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        if res.body["state"] == "succeeded" || res.body["state"] == "failed" {
            return res.body;
        }
        assert!(Instant::now() < deadline, "the restore did not finish: {}", res.text);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn mountpoint(volume: &str) -> PathBuf {
    let v = engine().client().inspect_volume(volume).await.expect("inspect volume");
    PathBuf::from(v.mountpoint)
}

fn manifest(dir: &Path) -> Manifest {
    Manifest::of_dir(dir).expect("manifest")
}

/// Issue 11, "Tests": back up → change and delete files → restore → every file's checksum
/// equals the original, and the site served throughout. The old data stays, on its volume.
#[tokio::test]
async fn a_restore_brings_back_every_file_while_the_site_serves() {
    const HOST: &str = "restore.backups.test";
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let a = app.customer(&admin, "alice@restore.test", "business").await;
    let b = app.customer(&admin, "bob@restore.test", "business").await;
    let alice = app.customer_user(&admin, &a, "alice@restore-user.test").await;
    let bob = app.customer_user(&admin, &b, "bob@restore-user.test").await;
    let site = app.running_site(&alice, &a, "home", HOST).await;
    let site_id = site["id"].as_str().expect("id").to_owned();
    let id: Uuid = site_id.parse().expect("uuid");
    let res = bob.post("/api/v1/sites", &serde_json::json!({"name": "bobs"})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let bobs_site = res.str("id");

    let data = volume_dir(&app, &site_id).await;
    write_files(&data, "uploads", 40, 16 * 1024);
    std::fs::write(data.join("index.html"), "<h1>the original page</h1>\n").expect("write");
    let original = manifest(&data);
    let backup = back_up(&app, &site_id).await;
    assert_eq!(backup.status, BackupStatus::Succeeded, "{backup:?}");
    let backup_id = backup.id;

    // Change and delete files.
    std::fs::remove_dir_all(data.join("uploads/d3")).expect("rm -r");
    std::fs::write(data.join("uploads/d1/file-1.bin"), b"changed").expect("overwrite");
    std::fs::write(data.join("index.html"), "<h1>defaced</h1>\n").expect("overwrite");
    let changed = manifest(&data);
    assert_ne!(changed.digest(), original.digest());
    app.wait_ingress_settled(HOST, 200).await;

    // Bob cannot restore Alice's site, nor Alice's backup onto his own site.
    let path = format!("/api/v1/sites/{site_id}/backups/{backup_id}/restore");
    bob.post(&path, &serde_json::json!({})).await.assert_problem(StatusCode::NOT_FOUND, "not-found");
    bob.post(&format!("/api/v1/sites/{bobs_site}/backups/{backup_id}/restore"), &serde_json::json!({}))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");

    let traffic = Traffic::start(app.scope().ingress, HOST, 4);
    let res = alice.post(&path, &serde_json::json!({})).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    assert_eq!(res.body["kind"], "site.restore", "{}", res.text);
    let run = finished_run(&alice, &res.str("id")).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let report = traffic.stop().await;
    assert_eq!(run["state"], "succeeded", "{run}");
    let steps: Vec<&str> = run["steps"].as_array().expect("steps").iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(steps, ["verify", "pre_restore", "fill", "switch", "keep_old"]);
    assert!(run["steps"].as_array().expect("steps").iter().all(|s| s["state"] == "succeeded"), "{run}");
    assert!(report.requests > 50, "too few requests to prove anything: {report:?}");
    assert!(report.failed.is_empty(), "requests failed during the restore: {report:?}");

    // Every file's checksum equals the original, on the volume the site now uses.
    let shown = alice.get(&format!("/api/v1/sites/{site_id}")).await;
    let volume = shown.body["data_volume"].as_str().expect("switched onto a fresh volume").to_owned();
    let restored = manifest(&mountpoint(&volume).await);
    assert_eq!(restored.entries.len(), original.entries.len());
    for (got, want) in restored.entries.iter().zip(&original.entries) {
        assert_eq!(got, want, "every file's SHA-256 equals the original");
    }
    let body = app.wait_ingress(HOST, 200).await;
    assert!(body.contains("the original page"), "{body}");

    // The data from before the restore is kept: backed up (pre_restore) and on its volume.
    let pre = backups::Entity::find()
        .filter(backups::Column::SiteId.eq(id))
        .filter(backups::Column::Kind.eq(BackupKind::PreRestore))
        .all(&app.db)
        .await
        .expect("db");
    assert_eq!(pre.len(), 1, "{pre:?}");
    assert_eq!(pre[0].status, BackupStatus::Succeeded, "{pre:?}");
    let volumes = alice.get(&format!("/api/v1/sites/{site_id}/volumes")).await;
    assert_eq!(volumes.body["items"][0]["name"], app.scope().names.volume(id).as_str(), "{}", volumes.text);
    assert_eq!(manifest(&data).digest(), changed.digest(), "the old volume keeps what it had");
    app.finish().await;
}

/// Flip one byte in the repository: the restore is refused at `verify`, with a clear error, and
/// the live data is untouched.
#[tokio::test]
async fn a_damaged_repository_is_refused_at_verify_and_the_site_is_untouched() {
    const HOST: &str = "damaged.backups.test";
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "damaged@restore.test", "business").await;
    let site = app.running_site(&admin, &c, "damaged", HOST).await;
    let site_id = site["id"].as_str().expect("id").to_owned();
    let data = volume_dir(&app, &site_id).await;
    write_files(&data, "uploads", 10, 16 * 1024);
    let backup = back_up(&app, &site_id).await;
    assert_eq!(backup.status, BackupStatus::Succeeded, "{backup:?}");
    std::fs::write(data.join("index.html"), "<h1>live data</h1>\n").expect("write");
    let live = manifest(&data);

    let repo =
        app.ops.backups.as_ref().expect("backups").local_path(c.parse().expect("uuid")).expect("a local repository");
    for pack in files(&repo.join("data")) {
        let mut bytes = std::fs::read(&pack).expect("read pack");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(&pack, &bytes).expect("write pack");
    }

    let path = format!("/api/v1/sites/{site_id}/backups/{}/restore", backup.id);
    let res = admin.post(&path, &serde_json::json!({})).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    let run = finished_run(&admin, &res.str("id")).await;
    assert_eq!(run["state"], "failed", "{run}");
    assert_eq!(run["current_step"], "verify", "{run}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(error.contains("damaged") && error.contains("not touched"), "{run}");

    // Untouched: same volume, same data, nothing retired, serving.
    let shown = admin.get(&format!("/api/v1/sites/{site_id}")).await;
    assert!(shown.body["data_volume"].is_null(), "{}", shown.text);
    assert_eq!(manifest(&data).digest(), live.digest());
    let volumes = admin.get(&format!("/api/v1/sites/{site_id}/volumes")).await;
    assert_eq!(volumes.body["items"], serde_json::json!([]), "{}", volumes.text);
    assert!(app.wait_ingress(HOST, 200).await.contains("live data"));
    app.finish().await;
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("ls") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    assert!(!out.is_empty(), "the repository has pack files");
    out
}
