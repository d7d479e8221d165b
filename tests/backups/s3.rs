//! A site backed up into S3 (moto's server on loopback): the restic CLI lists and fully checks
//! Berth's repository through its `s3:` URL, and the engine restores it byte for byte.

use berth_backup::Manifest;
use uuid::Uuid;

use super::{back_up, backups, restic, restic_snapshot_ids, volume_dir, write_files};
use crate::support::services::S3Server;
use crate::support::TestApp;

#[tokio::test]
async fn a_site_backed_up_to_s3_is_read_by_restic_and_restored() {
    let s3 = S3Server::start().await;
    let settings = s3.settings();
    let vars: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_runtime_with(&vars).await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "s3-backups@example.com", "business").await;
    let customer_id: Uuid = customer.parse().expect("uuid");
    let site = app.running_site(&admin, &customer, "blog", "blog.s3backup.test").await;
    let id = site["id"].as_str().expect("id").to_owned();
    let data = volume_dir(&app, &id).await;
    write_files(&data, "media", 20, 64 * 1024);
    let original = Manifest::of_dir(&data).expect("manifest");

    let backup = back_up(&admin, &id).await;
    assert_eq!(backup["status"], "succeeded", "{backup}");
    assert_eq!(backup["verified"], true);
    assert_eq!(backup["target"], "s3");
    let snapshot = backup["snapshot_id"].as_str().expect("snapshot").to_owned();

    let b = backups(&app);
    assert!(b.restic_url(customer_id).starts_with(&format!("s3:{}/{}/berth/customer-", s3.endpoint, s3.bucket)));
    let ids = restic_snapshot_ids(&b, customer_id, Some(&s3));
    assert_eq!(ids, vec![snapshot.clone()], "restic lists Berth's one snapshot");
    // Recursive listings must work for check to find every pack (the s3s-fs pitfall).
    let (ok, out, err) = restic(&b, customer_id, Some(&s3), &["check", "--read-data"]);
    assert!(ok, "restic check --read-data over S3 failed: {out}\n{err}");

    let into = tempfile::tempdir().expect("temp dir");
    b.repository(customer_id).restore(&snapshot, into.path()).await.expect("restore from S3");
    assert_eq!(Manifest::of_dir(into.path()).expect("manifest"), original, "every file restored byte for byte");

    app.finish().await;
}
