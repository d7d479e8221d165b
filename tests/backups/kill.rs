//! A worker killed (SIGKILL) in the middle of a backup: the real `berth worker` process runs the
//! `backup.site` job (the app's own workers do not work the `long` queue here) and is killed
//! after the snapshot is written but before it was read back. The row is not `succeeded` for
//! the partial run; after the lease expires another worker process takes the job over, finds the
//! snapshot by its tag, reads it back, and only then marks the backup `succeeded`. The site
//! keeps running throughout, and restic checks the repository clean.

use std::time::Duration;

use berth_backup::Manifest;
use berth_core::entities::backups;
use berth_core::entities::jobs::JobState;
use berth_core::types::BackupStatus;
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::json;
use uuid::Uuid;

use super::{backups as repositories, restic, restic_snapshot_ids, volume_dir, write_files};
use crate::queue::{eventually, job, ChildWorker};
use crate::support::TestApp;

const WITHIN: Duration = Duration::from_secs(90);

async fn row(app: &TestApp, id: Uuid) -> backups::Model {
    backups::Entity::find_by_id(id).one(&app.db).await.expect("query").expect("backup row")
}

#[tokio::test]
async fn a_worker_killed_mid_backup_leaves_it_unfinished_and_the_next_worker_completes_it() {
    let app = TestApp::spawn_runtime_with(&[("BERTH_WORKER_QUEUES", "default=8,short=8")]).await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "killed@example.com", "business").await;
    let customer_id: Uuid = customer.parse().expect("uuid");
    let site = app.running_site(&admin, &customer, "vault", "vault.backup-kill.test").await;
    let id = site["id"].as_str().expect("id").to_owned();
    let data = volume_dir(&app, &id).await;
    write_files(&data, "ledger", 20, 64 * 1024);
    let original = Manifest::of_dir(&data).expect("manifest");
    let container = app.scope().names.container(id.parse().expect("uuid"));
    let before = app.inspect(&container).await;

    let res = admin.post(&format!("/api/v1/sites/{id}/backups"), &json!({})).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    let backup_id: Uuid = res.body["backup"]["id"].as_str().expect("id").parse().expect("uuid");
    let job_id: Uuid = res.body["job_id"].as_str().expect("job").parse().expect("uuid");

    // A `berth worker` of its own on the app's database, engine and repositories.
    let backup_dir = app.config.backup.dir.display().to_string();
    let prefix = app.scope().names.instance().to_owned();
    let settings = |pause: bool| {
        let mut vars = vec![
            ("BERTH_WORKER_QUEUES", "long=1"),
            ("BERTH_DOCKER_HOST", "unix:///var/run/docker.sock"),
            ("BERTH_DOCKER_PREFIX", prefix.as_str()),
            ("BERTH_BACKUP_DIR", backup_dir.as_str()),
            ("BERTH_BACKUP_SCHEDULES", "false"),
        ];
        if pause {
            vars.push(("BERTH_FAULT_BACKUP_PAUSE_SECONDS", "600"));
        }
        vars
    };
    let mut doomed = ChildWorker::spawn_with(&app, 3, &settings(true));
    let paused = format!("fault injection: backup {backup_id} paused after writing its snapshot");
    eventually(WITHIN, "the worker to have written the snapshot", || async { doomed.logged(&paused).then_some(()) })
        .await;
    let b = repositories(&app);
    let written = b.repository(customer_id).snapshots().await.expect("snapshots");
    let tag = format!("backup:{backup_id}");
    assert_eq!(written.iter().filter(|s| s.tags.contains(&tag)).count(), 1, "{written:?}");
    doomed.child.kill().await.expect("kill -9 the worker");

    // The partial run is not a backup: the row is still `running`, unverified, without snapshot.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let partial = row(&app, backup_id).await;
    assert_eq!(partial.status, BackupStatus::Running, "{partial:?}");
    assert!(!partial.verified && partial.snapshot_id.is_none(), "{partial:?}");

    // Another worker takes the job over once the lease expired, and finishes the same backup.
    let mut next = ChildWorker::spawn_with(&app, 3, &settings(false));
    let done = eventually(WITHIN, "the backup to be completed by the next worker", || async {
        let r = row(&app, backup_id).await;
        matches!(r.status, BackupStatus::Succeeded | BackupStatus::Failed).then_some(r)
    })
    .await;
    // The row is marked before the job is: stop the worker only once its job is done, or its
    // lease would expire into a queued retry of a finished backup.
    eventually(WITHIN, "the job to be done", || async {
        (job(&app.db, job_id).await.state == JobState::Done).then_some(())
    })
    .await;
    next.child.kill().await.expect("stop the second worker");
    assert_eq!(done.status, BackupStatus::Succeeded, "{done:?}");
    assert!(done.verified, "{done:?}");
    assert_eq!(done.manifest_sha256.as_deref(), Some(original.digest().as_str()), "it describes the volume");
    assert_eq!(job(&app.db, job_id).await.attempts, 2, "the killed attempt and the one that finished");
    // The snapshot the killed attempt wrote was verified, not written a second time.
    let listed = restic_snapshot_ids(&b, customer_id, None);
    assert_eq!(listed, vec![done.snapshot_id.clone().expect("snapshot")], "one snapshot");
    let (ok, out, err) = restic(&b, customer_id, None, &["check", "--read-data"]);
    assert!(ok, "restic check --read-data: {out}\n{err}");

    // The site kept running throughout.
    let after = app.inspect(&container).await;
    assert_eq!(after.id, before.id, "same container");
    assert_eq!(after.state.as_ref().and_then(|s| s.running), Some(true));

    app.finish().await;
}
