//! Retention (`backup.prune`) on a real repository: a synthetic set of backup rows with chosen
//! dates, each with a real snapshot written by Berth's engine. The job keeps exactly the
//! expected set, the repository's snapshots (as the stock `restic` lists them) are exactly the
//! kept rows', `restic check --read-data` passes after the prune, and a policy that keeps nothing
//! still keeps the site's newest good backup.

use std::collections::BTreeSet;

use berth_backup::{Repository, SnapshotInfo, SnapshotMeta, Source};
use berth_core::entities::backups;
use berth_core::entities::jobs::JobState;
use berth_core::jobs::backup::PruneBackups;
use berth_core::types::{BackupKind, BackupStatus};
use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use serde_json::json;
use uuid::Uuid;

use super::{backups as repositories, restic, restic_snapshot_ids, run_job, write_files};
use crate::support::TestApp;

/// A backup row as the test lays it down, with the snapshot it wrote (if any).
struct Row {
    name: &'static str,
    id: Uuid,
    snapshot: Option<String>,
}

/// Writes a snapshot of fresh data for backup `id` of `site`, tagged as the backup job tags it.
async fn snapshot(repo: &dyn Repository, src: &std::path::Path, site: Uuid, id: Uuid) -> SnapshotInfo {
    let _ = std::fs::remove_dir_all(src);
    write_files(src, "files", 3, 32 * 1024);
    let meta = SnapshotMeta {
        label: format!("site-{site}"),
        tags: vec![format!("backup:{id}"), format!("site:{site}"), "kind:daily".into()],
    };
    repo.backup(Source::Dir(src.to_owned()), meta).await.expect("write a snapshot")
}

/// Lays down backup row `id` of `site` as the job would have left it; a succeeded row records
/// its snapshot, the others only carry its tag (an attempt that wrote but did not finish).
async fn insert(
    app: &TestApp,
    (site, customer): (Uuid, Uuid),
    (kind, status): (BackupKind, BackupStatus),
    at: DateTime<Utc>,
    snapshot: Option<&SnapshotInfo>,
    id: Uuid,
) {
    let succeeded = status == BackupStatus::Succeeded;
    backups::ActiveModel {
        id: Set(id),
        site_id: Set(site),
        customer_id: Set(customer),
        kind: Set(kind),
        status: Set(status),
        snapshot_id: Set(snapshot.filter(|_| succeeded).map(|s| s.id.clone())),
        size_bytes: Set(snapshot.map(|s| s.total_bytes as i64)),
        added_bytes: Set(snapshot.map(|s| s.added_bytes as i64)),
        file_count: Set(snapshot.map(|s| s.file_count as i64)),
        manifest_sha256: Set(None),
        verified: Set(succeeded),
        target: Set("local".into()),
        error: Set((status == BackupStatus::Failed).then(|| "the snapshot did not read back".to_owned())),
        job_id: Set(None),
        started_at: Set(Some(at)),
        finished_at: Set((!matches!(status, BackupStatus::Running)).then_some(at)),
        created_at: Set(at),
    }
    .insert(&app.db)
    .await
    .expect("insert backup row");
}

#[tokio::test]
async fn retention_keeps_exactly_the_expected_backups_and_the_repository_matches() {
    let app = TestApp::spawn_with_workers(&[]).await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "prune@example.com", "business").await;
    let customer_id: Uuid = customer.parse().expect("uuid");
    let res = admin
        .post("/api/v1/sites", &json!({"customer_id": customer, "name": "pruned", "domains": ["pruned.example"]}))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let site_id: Uuid = res.str("id").parse().expect("uuid");
    let policy = format!("/api/v1/sites/{site_id}/backup-policy");
    // Three daily copies, nothing else: the days are the site's own, whatever its plan says.
    let keep = json!({"keep_hourly": 0, "keep_daily": 3, "keep_weekly": 0, "keep_monthly": 0, "keep_yearly": 0});
    let put = admin.request(Method::PUT, &policy, Some(&keep)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);

    let b = repositories(&app);
    let repo = b.repository(customer_id);
    let src = tempfile::tempdir().expect("temp dir");
    let data = src.path().join("data");
    let now = Utc::now();
    let day = |d: i64| now - Duration::days(d) - Duration::hours(1);
    let who = (site_id, customer_id);
    // (name, kind, status, age in days, writes a snapshot)
    let plan: [(&str, BackupKind, BackupStatus, i64, bool); 10] = [
        ("good-1", BackupKind::Daily, BackupStatus::Succeeded, 1, true),
        // Written but it did not read back: a failed row whose snapshot carries its tag.
        ("failed-2", BackupKind::Daily, BackupStatus::Failed, 2, true),
        ("good-3", BackupKind::Hourly, BackupStatus::Succeeded, 3, true),
        ("good-4", BackupKind::Manual, BackupStatus::Succeeded, 4, true),
        ("good-5", BackupKind::Daily, BackupStatus::Succeeded, 5, true),
        ("failed-6", BackupKind::Daily, BackupStatus::Failed, 6, false),
        ("good-7", BackupKind::Daily, BackupStatus::Succeeded, 7, true),
        // Pre-restore copies: kept for BERTH_RETIRED_VOLUME_KEEP_DAYS (7) on their own rule.
        ("pre-restore-2", BackupKind::PreRestore, BackupStatus::Succeeded, 2, true),
        ("pre-restore-10", BackupKind::PreRestore, BackupStatus::Succeeded, 10, true),
        // A backup still running (its first attempt already wrote its snapshot): never touched.
        ("running-30", BackupKind::Daily, BackupStatus::Running, 30, true),
    ];
    let mut rows = Vec::new();
    for (name, kind, status, age, writes) in plan {
        let id = Uuid::now_v7();
        let snap = if writes { Some(snapshot(repo.as_ref(), &data, site_id, id).await) } else { None };
        insert(&app, who, (kind, status), day(age), snap.as_ref(), id).await;
        rows.push(Row { name, id, snapshot: snap.map(|s| s.id) });
    }
    assert_eq!(restic_snapshot_ids(&b, customer_id, None).len(), 9);

    // The three newest days with a good backup (1, 3, 4: day 2 failed), the young pre-restore
    // copy and the running backup stay; everything else goes, failures older than the newest
    // good backup included.
    let job = run_job(&app, &PruneBackups {}).await;
    assert_eq!(job.state, JobState::Done, "{:?}", job.last_error);
    assert_kept(&app, &b, customer_id, &rows, &["good-1", "good-3", "good-4", "pre-restore-2", "running-30"]).await;
    let list = admin.get(&format!("/api/v1/sites/{site_id}/backups")).await;
    let pruned = list.body["items"].as_array().expect("items").iter().filter(|b| b["status"] == "pruned").count();
    assert_eq!(pruned, 5, "the list says what retention removed: {}", list.text);
    let gone = rows.iter().find(|r| r.name == "good-5").expect("row");
    let res = admin.get(&format!("/api/v1/sites/{site_id}/backups/{}/download", gone.id)).await;
    res.assert_problem(StatusCode::CONFLICT, "conflict");

    // A policy that keeps nothing still keeps the newest good backup.
    let none = json!({"keep_hourly": 0, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0, "keep_yearly": 0});
    let put = admin.request(Method::PUT, &policy, Some(&none)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    let job = run_job(&app, &PruneBackups {}).await;
    assert_eq!(job.state, JobState::Done, "{:?}", job.last_error);
    assert_kept(&app, &b, customer_id, &rows, &["good-1", "pre-restore-2", "running-30"]).await;

    // Nothing left to the test's queue: the running row has no job.
    app.stop().await;
}

/// The rows not `pruned` are exactly `names`, restic lists exactly their snapshots, and the
/// repository checks clean with every byte read.
async fn assert_kept(app: &TestApp, b: &berth_backup::Backups, customer: Uuid, rows: &[Row], names: &[&str]) {
    let mut kept = BTreeSet::new();
    for row in rows {
        let stored = backups::Entity::find_by_id(row.id).one(&app.db).await.expect("query").expect("row stays");
        if stored.status != BackupStatus::Pruned {
            kept.insert(row.name);
        }
    }
    let expected: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(kept, expected, "the rows retention kept");
    let listed: BTreeSet<String> = restic_snapshot_ids(b, customer, None).into_iter().collect();
    let wanted: BTreeSet<String> =
        rows.iter().filter(|r| expected.contains(r.name)).filter_map(|r| r.snapshot.clone()).collect();
    assert_eq!(listed, wanted, "the repository holds exactly the kept backups' snapshots");
    let (ok, out, err) = restic(b, customer, None, &["check", "--read-data"]);
    assert!(ok, "restic check --read-data after the prune: {out}\n{err}");
}
