//! A worker paused (SIGSTOP) past its lease, then resumed, cannot complete or overwrite the job
//! that another worker took over: its writes carry a lease id that is no longer the row's.

use std::time::Duration;

use async_trait::async_trait;
use berth_core::entities::jobs::JobState;
use berth_core::jobs::demo::Sleep;
use berth_core::jobs::{enqueue, Job};
use berth_workers::{JobContext, Registry, RunJob};
use serde::{Deserialize, Serialize};

use super::{eventually, gate, job, ChildWorker, Worker};
use crate::support::TestApp;

const WITHIN: Duration = Duration::from_secs(60);

/// This process's stand-in for `demo.sleep`: it waits for the test instead of sleeping, so the
/// test decides when the takeover finishes.
#[derive(Debug, Serialize, Deserialize)]
struct GatedSleep {
    ms: u64,
}

impl Job for GatedSleep {
    const NAME: &'static str = Sleep::NAME;
}

#[async_trait]
impl RunJob for GatedSleep {
    async fn run(&self, _ctx: &JobContext) -> anyhow::Result<()> {
        gate("paused-worker").wait().await;
        Ok(())
    }
}

#[tokio::test]
async fn a_paused_worker_that_resumes_cannot_complete_a_job_it_lost() {
    let app = TestApp::spawn().await;
    let id = enqueue(&app.db, &Sleep { ms: 4000 }).await.expect("enqueue").expect("inserted");
    let mut paused = ChildWorker::spawn(&app, 2);
    let first = eventually(WITHIN, "the child worker to start the job", || async {
        let j = job(&app.db, id).await;
        (j.state == JobState::Running && paused.owns(j.locked_by.as_deref())).then_some(j)
    })
    .await;
    paused.signal("STOP");

    let takeover = Worker::start(&app.db, Registry::new().register::<GatedSleep>(), Duration::from_secs(2));
    let second = eventually(WITHIN, "this process to take the job over", || async {
        let j = job(&app.db, id).await;
        (j.state == JobState::Running && j.locked_by.as_deref() == Some(takeover.id.as_str())).then_some(j)
    })
    .await;
    assert_eq!(second.attempts, 2);
    assert_ne!(second.lease_id, first.lease_id);

    // Resumed, the child's heartbeat or its finished sleep tries to write with its old lease.
    paused.signal("CONT");
    eventually(WITHIN, "the resumed worker to notice it lost the lease", || async {
        paused.logged("lost its lease").then_some(())
    })
    .await;
    let now = job(&app.db, id).await;
    assert_eq!(now.state, JobState::Running, "the resumed worker did not complete the job");
    assert_eq!(now.lease_id, second.lease_id, "nor overwrite the new owner's lease");
    assert_eq!(now.locked_by, second.locked_by);

    gate("paused-worker").open();
    let done = eventually(WITHIN, "the new owner to finish", || async {
        let j = job(&app.db, id).await;
        (j.state == JobState::Done).then_some(j)
    })
    .await;
    assert_eq!(done.locked_by, second.locked_by);
    takeover.stop().await;

    paused.signal("TERM");
    let status = tokio::time::timeout(WITHIN, paused.child.wait()).await.expect("worker exits").expect("wait");
    assert!(status.success(), "berth worker stops cleanly on SIGTERM: {status:?}");
}
