//! The integrity check (`backup.check`) on real repositories: the daily run reads its seventh of
//! the data and records each repository clean; after one byte of a pack is flipped, a full
//! check records that repository failed (and only that one), which is what the `backup_check`
//! alert reads, and the next daily run reads that repository in full again; administrators list
//! the checks, customers may not.

use berth_backup::{SnapshotMeta, Source};
use berth_core::entities::backups;
use berth_core::entities::jobs::JobState;
use berth_core::jobs::backup::CheckBackups;
use berth_core::types::{BackupKind, BackupStatus};
use chrono::{Datelike, Utc};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ActiveValue::Set};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{backups as repositories, biggest_file, flip_byte, run_job, write_files};
use crate::support::{Client, TestApp};

/// A customer with one site and one real, verified backup of some data.
async fn customer_with_backup(app: &TestApp, admin: &Client, email: &str) -> Uuid {
    let customer = app.customer(admin, email, "business").await;
    let customer_id: Uuid = customer.parse().expect("uuid");
    let name = email.split('@').next().expect("name");
    let res = admin
        .post("/api/v1/sites", &json!({"customer_id": customer, "name": name, "domains": [format!("{name}.example")]}))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let site_id: Uuid = res.str("id").parse().expect("uuid");
    let src = tempfile::tempdir().expect("temp dir");
    write_files(src.path(), "files", 8, 256 * 1024);
    let repo = repositories(app).repository(customer_id);
    let id = Uuid::now_v7();
    let meta = SnapshotMeta { label: format!("site-{site_id}"), tags: vec![format!("backup:{id}")] };
    let snap = repo.backup(Source::Dir(src.path().to_owned()), meta).await.expect("backup");
    repo.verify(&snap.id).await.expect("verify");
    let now = Utc::now();
    backups::ActiveModel {
        id: Set(id),
        site_id: Set(site_id),
        customer_id: Set(customer_id),
        kind: Set(BackupKind::Manual),
        status: Set(BackupStatus::Succeeded),
        snapshot_id: Set(Some(snap.id)),
        size_bytes: Set(Some(snap.total_bytes as i64)),
        added_bytes: Set(Some(snap.added_bytes as i64)),
        file_count: Set(Some(snap.file_count as i64)),
        manifest_sha256: Set(None),
        verified: Set(true),
        target: Set("local".into()),
        error: Set(None),
        job_id: Set(None),
        started_at: Set(Some(now)),
        finished_at: Set(Some(now)),
        created_at: Set(now),
    }
    .insert(&app.db)
    .await
    .expect("insert backup row");
    customer_id
}

fn checks_of(list: &Value, customer: Uuid) -> Vec<Value> {
    let items = list["items"].as_array().expect("items");
    items.iter().filter(|c| c["customer_id"] == customer.to_string().as_str()).cloned().collect()
}

#[tokio::test]
async fn a_flipped_byte_fails_the_full_check_of_that_repository_only_and_is_recorded() {
    let app = TestApp::spawn_with_workers(&[]).await;
    let admin = app.admin().await;
    let damaged = customer_with_backup(&app, &admin, "damaged@example.com").await;
    let clean = customer_with_backup(&app, &admin, "clean@example.com").await;

    // The daily run: structure plus the day's seventh of the data, every repository clean.
    let job = run_job(&app, &CheckBackups::default()).await;
    assert_eq!(job.state, JobState::Done, "{:?}", job.last_error);
    let list = admin.get("/api/v1/backup-checks").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let part = format!("part {}/7", Utc::now().ordinal() % 7 + 1);
    for customer in [damaged, clean] {
        let checks = checks_of(&list.body, customer);
        assert_eq!(checks.len(), 1, "{}", list.text);
        assert_eq!((checks[0]["ok"].as_bool(), checks[0]["read_data"].as_str()), (Some(true), Some(part.as_str())));
        assert!(checks[0]["error"].is_null());
    }
    assert!(berth_core::store::backup_checks::failing_customers(&app.db).await.expect("query").is_empty());

    // One flipped byte in the damaged customer's biggest pack: a full check records it failed.
    let repo = repositories(&app).local_path(damaged).expect("local repository");
    flip_byte(&biggest_file(&repo.join("data")));
    let job = run_job(&app, &CheckBackups { full: true, customer_id: None }).await;
    assert_eq!(job.state, JobState::Done, "a failed check is recorded, not a failed job: {:?}", job.last_error);
    let list = admin.get("/api/v1/backup-checks").await;
    let latest = &checks_of(&list.body, damaged)[0];
    assert_eq!((latest["ok"].as_bool(), latest["read_data"].as_str()), (Some(false), Some("all")), "{latest}");
    assert!(latest["error"].as_str().is_some_and(|e| !e.is_empty()), "{latest}");
    let latest = &checks_of(&list.body, clean)[0];
    assert_eq!((latest["ok"].as_bool(), latest["read_data"].as_str()), (Some(true), Some("all")), "{latest}");
    let failing = berth_core::store::backup_checks::failing_customers(&app.db).await.expect("query");
    assert_eq!(failing.into_iter().collect::<Vec<_>>(), [damaged], "what the backup_check alert reads");

    // The next daily run reads the failing repository in full again (a seventh could miss the
    // damage), the clean one its seventh; the damage is still there.
    let job = run_job(&app, &CheckBackups::default()).await;
    assert_eq!(job.state, JobState::Done, "{:?}", job.last_error);
    let list = admin.get("/api/v1/backup-checks").await;
    let latest = &checks_of(&list.body, damaged)[0];
    assert_eq!((latest["ok"].as_bool(), latest["read_data"].as_str()), (Some(false), Some("all")), "{latest}");
    let latest = &checks_of(&list.body, clean)[0];
    assert_eq!(latest["read_data"].as_str(), Some(part.as_str()), "{latest}");

    // One customer's checks; customers may not list them.
    let one = admin.get(&format!("/api/v1/backup-checks?customer_id={clean}")).await;
    assert_eq!(one.body["items"].as_array().map(Vec::len), Some(3), "{}", one.text);
    let owner = app.customer_user(&admin, &clean.to_string(), "owner@clean.example").await;
    owner.get("/api/v1/backup-checks").await.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    admin.get("/api/v1/backup-checks?customer=x").await.assert_problem(StatusCode::BAD_REQUEST, "bad-request");

    app.stop().await;
}

/// The daily run keeps 90 days of check history and, however old, each repository's newest
/// check: that one is what the `backup_check` alert and the next run's full read go by.
#[tokio::test]
async fn the_daily_run_forgets_checks_older_than_ninety_days_but_not_a_repositorys_newest() {
    use berth_core::entities::backup_checks;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    let app = TestApp::spawn_with_workers(&[]).await;
    let admin = app.admin().await;
    let kept: Uuid = app.customer(&admin, "history@example.com", "starter").await.parse().expect("uuid");
    let stale: Uuid = app.customer(&admin, "stale@example.com", "starter").await.parse().expect("uuid");
    let now = Utc::now();
    // Neither customer has backups, so the run checks no repository and only prunes.
    for (customer, days, ok) in [(kept, 200, false), (kept, 120, true), (kept, 10, true), (stale, 300, false)] {
        let started = now - chrono::Duration::days(days);
        backup_checks::ActiveModel {
            id: Set(Uuid::now_v7()),
            customer_id: Set(customer),
            read_data: Set("all".into()),
            ok: Set(ok),
            error: Set((!ok).then(|| "pack damaged".to_owned())),
            started_at: Set(started),
            finished_at: Set(started),
        }
        .insert(&app.db)
        .await
        .expect("insert check");
    }
    let job = run_job(&app, &CheckBackups::default()).await;
    assert_eq!(job.state, JobState::Done, "{:?}", job.last_error);
    let ages = |customer: Uuid| {
        let db = app.db.clone();
        async move {
            backup_checks::Entity::find()
                .filter(backup_checks::Column::CustomerId.eq(customer))
                .order_by_asc(backup_checks::Column::StartedAt)
                .all(&db)
                .await
                .expect("query")
                .into_iter()
                .map(|c| (now - c.started_at).num_days())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ages(kept).await, [10], "checks older than 90 days go when a newer one exists");
    assert_eq!(ages(stale).await, [300], "a repository's newest check stays, however old");
    let failing = berth_core::store::backup_checks::failing_customers(&app.db).await.expect("query");
    assert_eq!(failing.into_iter().collect::<Vec<_>>(), [stale], "the alert still sees the failed check");
}
