//! Flows: a worker killed (SIGKILL) in the middle of a step; the flow resumes at that step on
//! another worker, succeeded steps do not run again, and the step's effect happens once.

use std::time::Duration;

use berth_core::entities::flow_runs::{self, FlowState};
use berth_core::entities::flow_steps::StepState;
use berth_core::flows::demo::{DemoFlow, DemoInput};
use sea_orm::EntityTrait;
use uuid::Uuid;

use super::{eventually, ChildWorker, Worker};
use crate::support::TestApp;

const WITHIN: Duration = Duration::from_secs(60);

async fn run(app: &TestApp, id: Uuid) -> flow_runs::Model {
    flow_runs::Entity::find_by_id(id).one(&app.db).await.expect("query").expect("run exists")
}

#[tokio::test]
async fn a_flow_killed_mid_step_resumes_at_that_step_with_no_effect_twice() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let input = DemoInput { dir: Some(dir.path().to_owned()), hold_step: Some("work".into()), ..Default::default() };
    let started = berth_core::flows::start::<DemoFlow>(&app.db, &input, None).await.expect("start flow");

    let mut doomed = ChildWorker::spawn(&app, 2);
    eventually(WITHIN, "the child worker to be inside step `work`", || async {
        let steps = berth_core::store::flows::steps(&app.db, started.id).await.expect("steps");
        let work_effect = dir.path().join(format!("{}:work", started.id));
        (steps[1].state == StepState::Running && work_effect.exists()).then_some(())
    })
    .await;
    doomed.child.kill().await.expect("kill -9 the worker");

    // Let the held step finish this time, on a worker in this process.
    std::fs::write(dir.path().join("release"), b"").expect("release");
    let worker = Worker::start(&app.db, berth_workers::registry(), Duration::from_secs(2));
    let done = eventually(WITHIN, "the flow to complete", || async {
        let r = run(&app, started.id).await;
        (r.state == FlowState::Succeeded).then_some(r)
    })
    .await;
    worker.stop().await;
    assert!(done.finished_at.is_some());

    let steps = berth_core::store::flows::steps(&app.db, started.id).await.expect("steps");
    let attempts: Vec<(&str, StepState, i32)> = steps.iter().map(|s| (s.name.as_str(), s.state, s.attempts)).collect();
    assert_eq!(
        attempts,
        vec![
            ("prepare", StepState::Succeeded, 1),
            ("work", StepState::Succeeded, 2),
            ("finish", StepState::Succeeded, 1)
        ],
        "the succeeded step did not run again; the interrupted one ran once more"
    );
    let log = std::fs::read_to_string(dir.path().join("attempts.log")).expect("log");
    assert_eq!(log.lines().collect::<Vec<_>>(), vec!["prepare 1", "work 1", "work 2", "finish 1"]);
    // One effect per step, whatever the attempts: the idempotency key made the re-run a no-op.
    let mut effects: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with(&started.id.to_string()))
        .collect();
    effects.sort();
    let expected: Vec<String> = ["finish", "prepare", "work"].iter().map(|s| format!("{}:{s}", started.id)).collect();
    assert_eq!(effects, expected);
}
