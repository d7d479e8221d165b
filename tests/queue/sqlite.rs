//! The embedded default (SQLite, one process) keeps the queue's semantics: transactional
//! enqueue, de-duplication, lease expiry with a fencing token, and flows.

use std::time::Duration;

use berth_core::entities::flow_runs::{self, FlowState};
use berth_core::entities::jobs::JobState;
use berth_core::flows::demo::{DemoFlow, DemoInput};
use berth_core::jobs::demo::Noop;
use berth_core::jobs::enqueue;
use berth_migrations::{Migrator, MigratorTrait};
use berth_workers::queue::store;
use sea_orm::{EntityTrait, TransactionTrait};

use super::{eventually, gate, job, Blocking, Worker};
use crate::support::pending_jobs;

const WITHIN: Duration = Duration::from_secs(30);

#[tokio::test]
async fn sqlite_keeps_the_queue_semantics_in_one_process() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("berth.db").display());
    // As Berth opens it (core::db): one connection, a write-ahead log, full sync.
    let config =
        berth_core::config::Config::load(|name| (name == "BERTH_DATA_DIR").then(|| dir.path().display().to_string()))
            .expect("config");
    let db = berth_core::db::connect_url(&url, &config).await.expect("connect");
    let pragma = |name: &'static str| {
        let db = db.clone();
        async move {
            use sea_orm::ConnectionTrait;
            let row = db
                .query_one(sea_orm::Statement::from_string(sea_orm::DbBackend::Sqlite, format!("PRAGMA {name}")))
                .await
                .expect("pragma")
                .expect("row");
            row.try_get_by_index::<sea_orm::prelude::Json>(0).map(|v| v.to_string()).unwrap_or_else(|_| {
                row.try_get_by_index::<i64>(0)
                    .map(|v| v.to_string())
                    .unwrap_or_else(|_| row.try_get_by_index::<String>(0).expect("pragma value"))
            })
        }
    };
    assert_eq!(pragma("journal_mode").await, "wal");
    // 2 = FULL: a commit is on disk before it is acknowledged.
    assert_eq!(pragma("synchronous").await, "2");
    assert_eq!(pragma("busy_timeout").await, "5000");
    Migrator::up(&db, None).await.expect("migrate");

    // Rolled back: no job. Committed: runs, woken in process.
    let txn = db.begin().await.expect("begin");
    let gone = enqueue(&txn, &Noop {}).await.expect("enqueue").expect("inserted");
    txn.rollback().await.expect("rollback");
    assert!(berth_core::entities::jobs::Entity::find_by_id(gone).one(&db).await.expect("query").is_none());

    let lease = Duration::from_secs(1);
    let registry = || berth_workers::registry().register::<Blocking>();
    let a = Worker::start(&db, registry(), lease);
    let noop = enqueue(&db, &Noop {}).await.expect("enqueue").expect("inserted");
    eventually(WITHIN, "the no-op job to be done", || async {
        (job(&db, noop).await.state == JobState::Done).then_some(())
    })
    .await;

    // A worker that stops heartbeating loses the job to the next one, and its late completion
    // is rejected by the fence.
    let blocked = enqueue(&db, &Blocking { gate: "sqlite".into() }).await.expect("enqueue").expect("inserted");
    assert_eq!(enqueue(&db, &Noop {}).await.map(|o| o.is_some()).ok(), Some(true));
    let first = eventually(WITHIN, "worker A to run the blocking job", || async {
        let j = job(&db, blocked).await;
        (j.state == JobState::Running).then_some(j)
    })
    .await;
    a.crash();
    let b = Worker::start(&db, registry(), lease);
    let second = eventually(WITHIN, "worker B to take it over", || async {
        let j = job(&db, blocked).await;
        (j.state == JobState::Running && j.locked_by.as_deref() == Some(b.id.as_str())).then_some(j)
    })
    .await;
    assert_eq!(second.attempts, 2);
    let rejected = store::complete(&db, &[(blocked, first.lease_id.expect("lease"))]).await.expect("complete");
    assert_eq!(rejected, vec![blocked]);
    gate("sqlite").open();
    eventually(WITHIN, "B to finish it", || async { (job(&db, blocked).await.state == JobState::Done).then_some(()) })
        .await;

    // Flows run on SQLite too.
    let run = berth_core::flows::start::<DemoFlow>(&db, &DemoInput::default(), None).await.expect("start");
    eventually(WITHIN, "the demo flow to succeed", || async {
        let r = flow_runs::Entity::find_by_id(run.id).one(&db).await.expect("query").expect("run");
        (r.state == FlowState::Succeeded).then_some(())
    })
    .await;
    eventually(WITHIN, "the queue to drain", || async { pending_jobs(&db).await.is_empty().then_some(()) }).await;
    b.stop().await;
    assert_eq!(pending_jobs(&db).await, Vec::<String>::new());
}
