//! The scheduler: exactly one fire per tick however many schedulers run, one catch-up fire for
//! runs missed while down, and no fire for a schedule's past when it is first seen.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use berth_core::entities::job_schedules;
use berth_core::entities::jobs::{self, JobState};
use berth_workers::scheduler::Scheduler;
use chrono::{SubsecRound, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use super::{eventually, Worker};
use crate::support::{pending_jobs, TestApp};

const WITHIN: Duration = Duration::from_secs(60);

async fn add_schedule(db: &DatabaseConnection, name: &str, cron: &str, last_tick: Option<chrono::DateTime<Utc>>) {
    let now = Utc::now();
    job_schedules::ActiveModel {
        name: Set(name.into()),
        cron: Set(cron.into()),
        kind: Set("demo.noop".into()),
        payload: Set(serde_json::json!({})),
        enabled: Set(true),
        builtin: Set(false),
        last_tick: Set(last_tick),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .expect("insert schedule");
}

async fn scheduled(db: &DatabaseConnection) -> Vec<jobs::Model> {
    jobs::Entity::find()
        .filter(jobs::Column::Kind.eq("demo.noop"))
        .filter(jobs::Column::ScheduledFor.is_not_null())
        .all(db)
        .await
        .expect("query")
}

fn scheduler(db: &DatabaseConnection) -> Scheduler {
    Scheduler::new(db.clone(), Arc::new(berth_workers::registry()), vec![])
}

async fn drain(db: &DatabaseConnection) {
    let worker = Worker::start(db, berth_workers::registry(), Duration::from_secs(5));
    eventually(WITHIN, "the queue to drain", || async { pending_jobs(db).await.is_empty().then_some(()) }).await;
    worker.stop().await;
}

#[tokio::test]
async fn two_schedulers_never_fire_the_same_tick_twice() {
    let app = TestApp::spawn().await;
    add_schedule(&app.db, "test.every-second", "* * * * * *", None).await;
    let worker = Worker::start(&app.db, berth_workers::registry(), Duration::from_secs(5));
    let (stop, rx) = tokio::sync::watch::channel(false);
    let a = tokio::spawn(scheduler(&app.db).run(rx.clone()));
    let b = tokio::spawn(scheduler(&app.db).run(rx));
    eventually(WITHIN, "four ticks to be fired and run", || async {
        let done = scheduled(&app.db).await.into_iter().filter(|j| j.state == JobState::Done).count();
        (done >= 4).then_some(())
    })
    .await;
    let _ = stop.send(true);
    a.await.expect("scheduler a");
    b.await.expect("scheduler b");
    eventually(WITHIN, "the queue to drain", || async { pending_jobs(&app.db).await.is_empty().then_some(()) }).await;
    worker.stop().await;

    let fired = scheduled(&app.db).await;
    let ticks: HashSet<_> = fired.iter().map(|j| j.scheduled_for).collect();
    assert_eq!(
        ticks.len(),
        fired.len(),
        "a tick fired twice: {:?}",
        fired.iter().map(|j| j.scheduled_for).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn missed_ticks_fire_once_on_catch_up_from_exactly_one_of_many_schedulers() {
    let app = TestApp::spawn().await;
    // Down for an hour: sixty ticks of an every-minute schedule were missed.
    let an_hour_ago = Utc::now().trunc_subsecs(0) - chrono::Duration::hours(1);
    add_schedule(&app.db, "test.every-minute", "0 * * * * *", Some(an_hour_ago)).await;
    let now = Utc::now();
    let schedulers: Vec<Scheduler> = (0..8).map(|_| scheduler(&app.db)).collect();
    let fired: Vec<usize> = join_all(schedulers.iter().map(|s| s.fire_due(now)).collect())
        .await
        .into_iter()
        .map(|r| r.expect("fire_due"))
        .collect();
    assert_eq!(fired.iter().sum::<usize>(), 1, "one catch-up fire in total: {fired:?}");
    let jobs = scheduled(&app.db).await;
    assert_eq!(jobs.len(), 1);
    let tick = berth_workers::scheduler::latest_tick(&"0 * * * * *".parse().expect("cron"), now);
    assert_eq!(jobs[0].scheduled_for, tick, "the catch-up fire is for the latest missed tick");
    assert_eq!(jobs[0].dedup_key.as_deref(), Some("schedule:test.every-minute"));

    // The same tick again fires nothing.
    assert_eq!(scheduler(&app.db).fire_due(now).await.expect("fire"), 0);
    drain(&app.db).await;
}

#[tokio::test]
async fn a_new_schedule_starts_from_now_without_firing_its_past() {
    let app = TestApp::spawn().await;
    add_schedule(&app.db, "test.new", "0 * * * * *", None).await;
    let now = Utc::now();
    assert_eq!(scheduler(&app.db).fire_due(now).await.expect("fire"), 0);
    let row = job_schedules::Entity::find_by_id("test.new").one(&app.db).await.expect("query").expect("row");
    assert_eq!(row.last_tick, berth_workers::scheduler::latest_tick(&"0 * * * * *".parse().expect("cron"), now));
    assert!(scheduled(&app.db).await.is_empty());
}

/// Polls all futures concurrently (on this task) and collects their results in order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().map(|r| r.expect("every future finished")).collect()
}
