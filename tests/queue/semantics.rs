//! Queue semantics on PostgreSQL: transactional enqueue, de-duplication, leases and fencing,
//! retries, dead jobs, graceful shutdown.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use berth_core::entities::jobs::JobState;
use berth_core::jobs::demo::{Fail, Noop, Sleep};
use berth_core::jobs::{enqueue, Job};
use berth_workers::queue::store;
use berth_workers::{JobContext, Registry, RunJob};
use sea_orm::{EntityTrait, TransactionTrait};
use serde::{Deserialize, Serialize};

use super::{eventually, gate, job, Blocking, Worker};
use crate::support::TestApp;

const WITHIN: Duration = Duration::from_secs(30);

#[tokio::test]
async fn enqueue_in_a_rolled_back_transaction_leaves_no_job() {
    let app = TestApp::spawn().await;
    let txn = app.db.begin().await.expect("begin");
    let id = enqueue(&txn, &Noop {}).await.expect("enqueue").expect("inserted");
    txn.rollback().await.expect("rollback");
    assert!(berth_core::entities::jobs::Entity::find_by_id(id).one(&app.db).await.expect("query").is_none());

    // The same in a committed transaction runs, and an idle worker starts it promptly.
    let worker = Worker::start(&app.db, berth_workers::registry(), Duration::from_secs(5));
    let txn = app.db.begin().await.expect("begin");
    let id = enqueue(&txn, &Noop {}).await.expect("enqueue").expect("inserted");
    txn.commit().await.expect("commit");
    eventually(WITHIN, "the job to be done", || async {
        (job(&app.db, id).await.state == JobState::Done).then_some(())
    })
    .await;
    worker.stop().await;
}

#[derive(Debug, Serialize, Deserialize)]
struct Unique {
    key: String,
}

impl Job for Unique {
    const NAME: &'static str = "test.unique";
    fn dedup_key(&self) -> Option<String> {
        Some(self.key.clone())
    }
}

#[async_trait]
impl RunJob for Unique {
    async fn run(&self, _ctx: &JobContext) -> anyhow::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_deduplicated_job_is_enqueued_once_while_waiting() {
    let app = TestApp::spawn().await;
    let first = enqueue(&app.db, &Unique { key: "k".into() }).await.expect("enqueue");
    let second = enqueue(&app.db, &Unique { key: "k".into() }).await.expect("enqueue");
    let other = enqueue(&app.db, &Unique { key: "other".into() }).await.expect("enqueue");
    assert!(first.is_some() && other.is_some());
    assert_eq!(second, None, "a waiting job with the same key absorbs the second enqueue");

    let worker = Worker::start(&app.db, Registry::new().register::<Unique>(), Duration::from_secs(5));
    let first = first.expect("first");
    eventually(WITHIN, "the job to be done", || async {
        (job(&app.db, first).await.state == JobState::Done).then_some(())
    })
    .await;
    // Once it finished, the key is free again.
    let again = enqueue(&app.db, &Unique { key: "k".into() }).await.expect("enqueue").expect("inserted");
    eventually(WITHIN, "the next job to be done", || async {
        (job(&app.db, again).await.state == JobState::Done).then_some(())
    })
    .await;
    worker.stop().await;
}

#[tokio::test]
async fn an_expired_lease_hands_the_job_to_another_worker_and_fences_the_first() {
    let app = TestApp::spawn().await;
    let lease = Duration::from_secs(1);
    let a = Worker::start(&app.db, Registry::new().register::<Blocking>(), lease);
    let id = enqueue(&app.db, &Blocking { gate: "lease".into() }).await.expect("enqueue").expect("inserted");
    let first = eventually(WITHIN, "worker A to run the job", || async {
        let j = job(&app.db, id).await;
        (j.state == JobState::Running && j.locked_by.as_deref() == Some(a.id.as_str())).then_some(j)
    })
    .await;
    let a_id = a.id.clone();
    a.crash();

    let b = Worker::start(&app.db, Registry::new().register::<Blocking>(), lease);
    let second = eventually(WITHIN, "worker B to take the job over", || async {
        let j = job(&app.db, id).await;
        (j.state == JobState::Running && j.locked_by.as_deref() == Some(b.id.as_str())).then_some(j)
    })
    .await;
    assert_ne!(second.locked_by.as_deref(), Some(a_id.as_str()));
    assert_eq!(second.attempts, 2, "the takeover is a second attempt");
    assert_ne!(first.lease_id, second.lease_id, "a new lease, a new fencing token");
    assert_eq!(second.last_error.as_deref(), Some(store::LEASE_EXPIRED));

    // Worker A's late writes, with its old lease, change nothing.
    let old = first.lease_id.expect("lease");
    let rejected = store::complete(&app.db, &[(id, old)]).await.expect("complete");
    assert_eq!(rejected, vec![id], "A's completion is rejected by the fence");
    let lost = store::heartbeat(&app.db, &[(id, old)], Duration::from_secs(60)).await.expect("heartbeat");
    assert_eq!(lost, vec![id], "A cannot extend a lease it no longer holds");
    assert!(!store::release(&app.db, id, old).await.expect("release"));
    let now = job(&app.db, id).await;
    assert_eq!((now.state, now.lease_id), (JobState::Running, second.lease_id), "B still owns it");

    gate("lease").open();
    eventually(WITHIN, "B to finish the job", || async {
        (job(&app.db, id).await.state == JobState::Done).then_some(())
    })
    .await;
    b.stop().await;
}

#[derive(Debug, Serialize, Deserialize)]
struct Flaky {}

static FLAKY_RUNS: AtomicUsize = AtomicUsize::new(0);

impl Job for Flaky {
    const NAME: &'static str = "test.flaky";
    const MAX_ATTEMPTS: i32 = 3;
}

#[async_trait]
impl RunJob for Flaky {
    async fn run(&self, _ctx: &JobContext) -> anyhow::Result<()> {
        if FLAKY_RUNS.fetch_add(1, Ordering::SeqCst) == 0 {
            anyhow::bail!("first run fails");
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_failed_job_is_retried_with_backoff_and_a_spent_one_is_dead_until_retried_by_hand() {
    let app = TestApp::spawn().await;
    let worker = Worker::start(&app.db, berth_workers::registry().register::<Flaky>(), Duration::from_secs(5));
    let flaky = enqueue(&app.db, &Flaky {}).await.expect("enqueue").expect("inserted");
    let done = eventually(WITHIN, "the flaky job to succeed on its retry", || async {
        let j = job(&app.db, flaky).await;
        (j.state == JobState::Done).then_some(j)
    })
    .await;
    assert_eq!(done.attempts, 2);
    assert_eq!(done.last_error.as_deref(), Some("first run fails"), "the failure stays on record");

    let dead = enqueue(&app.db, &Fail { message: "boom".into() }).await.expect("enqueue").expect("inserted");
    let j = eventually(WITHIN, "the failing job to die", || async {
        let j = job(&app.db, dead).await;
        (j.state == JobState::Dead).then_some(j)
    })
    .await;
    assert_eq!((j.attempts, j.max_attempts, j.last_error.as_deref()), (1, 1, Some("boom")));

    // Retried by hand (through the API, as an admin), it runs again from a fresh attempt count.
    let admin = app.admin().await;
    let res = admin.post(&format!("/api/v1/jobs/{dead}/retry"), &serde_json::json!({})).await;
    assert_eq!(res.status, reqwest::StatusCode::OK, "{}", res.text);
    eventually(WITHIN, "the retried job to run and die again", || async {
        let j = job(&app.db, dead).await;
        (j.state == JobState::Dead && j.attempts == 1 && j.finished_at > Some(j.created_at)).then_some(())
    })
    .await;
    worker.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_short_jobs_and_releases_long_ones() {
    let app = TestApp::spawn().await;
    let worker = Worker::start_with(&app.db, berth_workers::registry().register::<Blocking>(), |s| {
        s.lease = Duration::from_secs(5);
        s.shutdown_grace = Duration::from_millis(1500);
    });
    let short = enqueue(&app.db, &Sleep { ms: 300 }).await.expect("enqueue").expect("inserted");
    let long = enqueue(&app.db, &Blocking { gate: "shutdown".into() }).await.expect("enqueue").expect("inserted");
    eventually(WITHIN, "both jobs to run", || async {
        let (s, l) = (job(&app.db, short).await, job(&app.db, long).await);
        (s.state != JobState::Queued && l.state == JobState::Running).then_some(())
    })
    .await;
    worker.stop().await;

    assert_eq!(job(&app.db, short).await.state, JobState::Done, "a job that fits the grace period finishes");
    let l = job(&app.db, long).await;
    assert_eq!(l.state, JobState::Queued, "a job that does not is given back");
    assert_eq!(l.attempts, 0, "releasing at shutdown does not use up an attempt");
    assert_eq!(l.lease_id, None);

    // Another worker picks it up; the test then leaves nothing behind.
    let next = Worker::start(&app.db, Registry::new().register::<Blocking>(), Duration::from_secs(5));
    gate("shutdown").open();
    eventually(WITHIN, "the released job to finish elsewhere", || async {
        (job(&app.db, long).await.state == JobState::Done).then_some(())
    })
    .await;
    next.stop().await;
}
