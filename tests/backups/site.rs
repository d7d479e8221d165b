//! A running site backed up into a local repository: the site keeps serving and its container
//! is never stopped; the snapshot restores byte for byte; restic reads and checks the
//! repository; a 1 % change adds little; a flipped byte makes verify and restore refuse.

use berth_backup::{BackupError, Manifest};
use uuid::Uuid;

use super::{back_up, backups, biggest_file, flip_byte, restic, restic_snapshot_ids, volume_dir, write_files};
use crate::support::runtime::Traffic;
use crate::support::TestApp;

const HOST: &str = "shop.backup.test";

#[tokio::test]
async fn a_serving_site_is_backed_up_verified_restored_and_corruption_is_refused() {
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "backups@example.com", "business").await;
    let customer_id: Uuid = customer.parse().expect("uuid");
    let site = app.running_site(&admin, &customer, "shop", HOST).await;
    let id = site["id"].as_str().expect("id").to_owned();
    let container = app.scope().names.container(id.parse().expect("uuid"));

    // ~10 MB in 100 files of 100 KiB, plus a page and a symlink, written into the live volume.
    let data = volume_dir(&app, &id).await;
    write_files(&data, "uploads", 100, 100 * 1024);
    std::fs::write(data.join("index.html"), "<h1>shop</h1>\n").expect("index");
    std::os::unix::fs::symlink("index.html", data.join("home.html")).expect("symlink");
    let original = Manifest::of_dir(&data).expect("manifest of the volume");
    app.wait_ingress(HOST, 200).await;
    let before = app.inspect(&container).await;

    // Back up while visitors keep coming: every request answered, the container untouched.
    let traffic = Traffic::start(app.scope().ingress, HOST, 2);
    let first = back_up(&admin, &id).await;
    let report = traffic.stop().await;
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["verified"], true, "{first}");
    assert_eq!(first["target"], "local");
    assert!(
        report.requests > 0 && report.failed.is_empty(),
        "the site stopped answering during the backup: {report:?}"
    );
    let after = app.inspect(&container).await;
    assert_eq!(after.id, before.id, "same container");
    let started = |c: &bollard::models::ContainerInspectResponse| c.state.as_ref().and_then(|s| s.started_at.clone());
    assert_eq!(started(&after), started(&before), "the container was never restarted");
    assert_eq!(after.state.as_ref().and_then(|s| s.running), Some(true));
    // The row describes exactly what was in the volume.
    assert_eq!(first["file_count"], original.file_count(), "{first}");
    assert_eq!(first["size_bytes"], original.total_bytes(), "{first}");
    assert_eq!(first["manifest_sha256"], original.digest().as_str(), "{first}");
    let first_snapshot = first["snapshot_id"].as_str().expect("snapshot").to_owned();
    let first_added = first["added_bytes"].as_i64().expect("added bytes");
    assert!(first_added > 9 * 1024 * 1024, "random data does not de-duplicate: {first}");

    // Change 1 % of the data (one file of 100): the second backup stores far less.
    write_files(&data, "uploads-changed", 1, 100 * 1024);
    std::fs::remove_file(data.join("uploads/d0/file-0.bin")).expect("rm");
    let second = back_up(&admin, &id).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    let second_added = second["added_bytes"].as_i64().expect("added bytes");
    assert!(second_added * 10 < first_added, "second backup added {second_added} bytes, the first {first_added}");

    // Change and delete files in the live volume, then restore the first snapshot elsewhere.
    std::fs::remove_dir_all(data.join("uploads/d3")).expect("rm -r");
    std::fs::write(data.join("index.html"), "<h1>defaced</h1>\n").expect("overwrite");
    let engine = backups(&app).repository(customer_id);
    let into = tempfile::tempdir().expect("temp dir");
    let restored = engine.restore(&first_snapshot, into.path()).await.expect("restore");
    assert_eq!(restored, original, "the engine's manifest of the snapshot");
    let on_disk = Manifest::of_dir(into.path()).expect("manifest of the restore");
    assert_eq!(on_disk.entries.len(), original.entries.len());
    for (got, want) in on_disk.entries.iter().zip(&original.entries) {
        assert_eq!(got, want, "every file's SHA-256 equals the original");
    }

    // The stock restic CLI lists Berth's snapshots and checks every byte of the repository.
    let b = backups(&app);
    let ids = restic_snapshot_ids(&b, customer_id, None);
    assert!(ids.contains(&first_snapshot), "restic lists {ids:?}, not {first_snapshot}");
    let (ok, out, err) = restic(&b, customer_id, None, &["check", "--read-data"]);
    assert!(ok, "restic check --read-data failed on Berth's repository: {out}\n{err}");

    // Flip one byte in the biggest pack file: verify and restore refuse, and nothing is written.
    let repo = b.local_path(customer_id).expect("local repository");
    flip_byte(&biggest_file(&repo.join("data")));
    let err = engine.verify(&first_snapshot).await.expect_err("a damaged snapshot does not verify");
    assert!(matches!(err, BackupError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("damaged"), "a clear error: {err}");
    let refused = tempfile::tempdir().expect("temp dir");
    let err = engine.restore(&first_snapshot, refused.path()).await.expect_err("restore refused");
    assert!(err.is_corrupt(), "{err}");
    assert_eq!(std::fs::read_dir(refused.path()).expect("ls").count(), 0, "nothing restored from a damaged snapshot");
    let (ok, _, _) = restic(&b, customer_id, None, &["check", "--read-data"]);
    assert!(!ok, "restic agrees the repository is damaged");

    app.finish().await;
}
