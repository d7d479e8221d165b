//! The backup routes: tenant scoping (another customer's site and backup ids answer 404 on all
//! three routes) and the download, a tar stream holding the site's files.

use std::io::Read;

use berth_backup::manifest::hash_reader;
use berth_backup::{EntryKind, Manifest};
use reqwest::StatusCode;

use super::{back_up, volume_dir, write_files};
use crate::support::TestApp;

#[tokio::test]
async fn backups_are_scoped_to_their_customer_and_download_as_tar() {
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let a = app.customer(&admin, "owner@example.com", "business").await;
    let b = app.customer(&admin, "other@example.com", "business").await;
    let alice = app.customer_user(&admin, &a, "alice@example.com").await;
    let bob = app.customer_user(&admin, &b, "bob@example.com").await;
    let site = app.running_site(&alice, &a, "home", "home.tenancy-backup.test").await;
    let site_a = site["id"].as_str().expect("id").to_owned();
    let res = bob.post("/api/v1/sites", &serde_json::json!({"name": "bobs"})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let site_b = res.str("id");

    let data = volume_dir(&app, &site_a).await;
    write_files(&data, "files", 10, 10 * 1024);
    let original = Manifest::of_dir(&data).expect("manifest");
    let backup = back_up(&alice, &site_a).await;
    assert_eq!(backup["status"], "succeeded", "{backup}");
    let backup_a = backup["id"].as_str().expect("id").to_owned();

    // Bob cannot back up, list or download Alice's site or backup, whichever site id he uses.
    bob.post(&format!("/api/v1/sites/{site_a}/backups"), &serde_json::json!({}))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    bob.get(&format!("/api/v1/sites/{site_a}/backups")).await.assert_problem(StatusCode::NOT_FOUND, "not-found");
    for path in [
        format!("/api/v1/sites/{site_a}/backups/{backup_a}/download"),
        format!("/api/v1/sites/{site_b}/backups/{backup_a}/download"),
    ] {
        bob.get(&path).await.assert_problem(StatusCode::NOT_FOUND, "not-found");
    }
    // Nor does Alice find her backup under another site's id.
    alice
        .get(&format!("/api/v1/sites/{site_b}/backups/{backup_a}/download"))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    let listed = bob.get(&format!("/api/v1/sites/{site_b}/backups")).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["items"], serde_json::json!([]), "Bob's site has no backups");
    let listed = alice.get(&format!("/api/v1/sites/{site_a}/backups")).await;
    assert_eq!(listed.body["items"][0]["id"], backup_a.as_str());

    // Alice downloads a tar of her files.
    let res = alice
        .http
        .get(format!("{}/api/v1/sites/{site_a}/backups/{backup_a}/download", alice.base))
        .send()
        .await
        .expect("download");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/x-tar");
    let disposition = res.headers()["content-disposition"].to_str().expect("ascii").to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"site-") && disposition.ends_with(".tar\""),
        "{disposition}"
    );
    let body = res.bytes().await.expect("body");
    let mut archive = tar::Archive::new(&body[..]);
    let mut files = Vec::new();
    for entry in archive.entries().expect("a tar") {
        let mut entry = entry.expect("entry");
        let path = entry.path().expect("path").to_string_lossy().trim_end_matches('/').to_owned();
        if entry.header().entry_type().is_file() {
            let mut content = Vec::new();
            entry.read_to_end(&mut content).expect("read");
            let (size, sha256) = hash_reader(&content[..]).expect("hash");
            files.push((path, size, sha256));
        }
    }
    let want: Vec<(String, u64, String)> = original
        .entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::File { size, sha256 } => Some((e.path.clone(), *size, sha256.clone())),
            _ => None,
        })
        .collect();
    files.sort();
    assert!(want.len() >= 10);
    assert_eq!(files, want, "the tar holds every file of the volume, byte for byte");

    app.finish().await;
}
