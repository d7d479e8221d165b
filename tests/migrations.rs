//! Migrations run from empty on both backends, are idempotent, and reverse cleanly.

use berth_migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

use crate::support::TempDatabase;

async fn plan_count(db: &DatabaseConnection) -> i64 {
    count(db, "plans").await
}

async fn count(db: &DatabaseConnection, table: &str) -> i64 {
    let row = db
        .query_one(Statement::from_string(db.get_database_backend(), format!("SELECT COUNT(*) AS n FROM {table}")))
        .await
        .expect("query")
        .expect("row");
    row.try_get("", "n").expect("count")
}

async fn exercise(db: &DatabaseConnection) {
    Migrator::up(db, None).await.expect("first run");
    Migrator::up(db, None).await.expect("second run is a no-op");
    assert_eq!(plan_count(db).await, 3);
    // m0011: backup schedules with their defaults; a plan's daily copies start from the days
    // of backups it promised.
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT backup_cron, backup_verify_cron, keep_daily, keep_yearly FROM plans WHERE id = 'pro'".to_owned(),
        ))
        .await
        .expect("query")
        .expect("row");
    assert_eq!(row.try_get::<String>("", "backup_cron").expect("cron"), "0 * * * *");
    assert_eq!(row.try_get::<String>("", "backup_verify_cron").expect("cron"), "30 3 * * *");
    assert_eq!(row.try_get::<i32>("", "keep_daily").expect("daily"), 30);
    assert_eq!(row.try_get::<i32>("", "keep_yearly").expect("yearly"), 10);
    assert!(Migrator::get_pending_migrations(db).await.expect("status").is_empty());
    Migrator::down(db, None).await.expect("down");
    Migrator::up(db, None).await.expect("up again");
    assert_eq!(plan_count(db).await, 3);
    // The default global alert rules: CPU, memory, down (m0008); restarts, certificate, disk
    // (m0013); backup, backup_check (m0015).
    assert_eq!(count(db, "alert_rules").await, 8);
    assert_eq!(count(db, "backup_checks").await, 0, "the integrity checks table exists");
    assert_eq!(count(db, "alert_silences").await, 0, "the silences table exists");
    // The audit log is append-only on this backend too.
    let backend = db.get_database_backend();
    db.execute(Statement::from_string(
        backend,
        "INSERT INTO audit_log (id, at, actor, action, target_type, details) VALUES \
         ('00000000-0000-7000-8000-000000000001', '2026-01-01T00:00:00Z', 'test', 'x', 'y', '{}')"
            .to_owned(),
    ))
    .await
    .expect("insert is allowed");
    assert!(db.execute(Statement::from_string(backend, "DELETE FROM audit_log".to_owned())).await.is_err());
}

#[tokio::test]
async fn postgres_from_empty() {
    let temp = TempDatabase::create().await;
    let db = Database::connect(&temp.url).await.expect("connect");
    exercise(&db).await;
    db.close().await.ok();
}

#[tokio::test]
async fn sqlite_from_empty() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("berth.db").display());
    let db = Database::connect(&url).await.expect("connect");
    exercise(&db).await;
}
