//! The worker pool: one fetcher per named queue (each with its own concurrency), a heartbeat
//! that extends the leases of running jobs, a completer that marks finished jobs done in batches,
//! and a reaper that hands expired leases back to the queue.
//!
//! Wake-up: on PostgreSQL a LISTEN connection hears the NOTIFY sent by every enqueue's commit,
//! so an idle fetcher claims within milliseconds; in-process enqueues (and SQLite, where that is
//! the only way) also wake it directly. A slow poll covers retries whose backoff just ended.
//!
//! Shutdown: when asked to stop, fetchers stop claiming; running jobs get `shutdown_grace` to
//! finish, then they are cancelled and their jobs released to the queue without losing an
//! attempt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::metrics::Metrics;
use super::store::{self, Claimed, Failed};
use super::{backoff, JobContext, Registry};
use crate::env::Env;
use crate::flows::FlowRegistry;

/// How a pool runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Named queues and how many jobs of each run at once in this process.
    pub queues: Vec<(String, usize)>,
    /// A running job's lease; heartbeats renew it every third of it.
    pub lease: Duration,
    /// How long running jobs may take to finish once shutdown starts.
    pub shutdown_grace: Duration,
    /// The slowest an idle fetcher looks for due work (retries whose backoff ended).
    pub poll: Duration,
    /// Names this process in `jobs.locked_by`.
    pub worker_id: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            queues: vec![("default".into(), 8), ("short".into(), 8), ("long".into(), 2)],
            lease: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            worker_id: worker_id(),
        }
    }
}

/// `host:pid:random`, unique per process start.
pub fn worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "berth".into());
    let tag = Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &tag[..8])
}

pub struct Pool {
    env: Arc<Env>,
    registry: Arc<Registry>,
    flows: Arc<FlowRegistry>,
    settings: Settings,
    metrics: Metrics,
}

struct Held {
    lease: Uuid,
    lost: Arc<Notify>,
}

enum Done {
    Ok { id: Uuid, lease: Uuid, kind: String, took: Duration },
    Flush(oneshot::Sender<()>),
}

struct Shared {
    env: Arc<Env>,
    db: DatabaseConnection,
    registry: Arc<Registry>,
    flows: Arc<FlowRegistry>,
    settings: Settings,
    metrics: Metrics,
    held: Mutex<HashMap<Uuid, Held>>,
    done: mpsc::UnboundedSender<Done>,
}

impl Shared {
    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Held>> {
        // A poisoned map only means a task panicked mid-insert; the map itself is still sound.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Pool {
    /// A pool running `registry`'s jobs and `flows`' steps in `env`; its metrics join the
    /// environment's registry.
    pub fn new(env: Arc<Env>, registry: Registry, flows: FlowRegistry, settings: Settings) -> Self {
        let metrics = Metrics::new(&env.metrics);
        Self { env, registry: Arc::new(registry), flows: Arc::new(flows), settings, metrics }
    }

    /// Runs until `shutdown` turns true, then stops as described in the module docs.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            db: self.env.db.clone(),
            env: self.env,
            registry: self.registry,
            flows: self.flows,
            settings: self.settings,
            metrics: self.metrics,
            held: Mutex::new(HashMap::new()),
            done: done_tx,
        });
        let wakes: HashMap<String, Arc<Notify>> =
            shared.settings.queues.iter().map(|(q, _)| (q.clone(), Arc::new(Notify::new()))).collect();
        tracing::info!(
            worker = %shared.settings.worker_id,
            queues = ?shared.settings.queues,
            "Job workers started"
        );

        let mut background = JoinSet::new();
        let (bg_stop_tx, bg_stop) = watch::channel(false);
        if shared.db.get_database_backend() == DbBackend::Postgres {
            background.spawn(listen(shared.db.clone(), wakes.clone(), bg_stop.clone()));
        }
        background.spawn(heartbeat(shared.clone(), bg_stop.clone()));
        background.spawn(maintenance(shared.clone(), bg_stop.clone()));
        let completer = tokio::spawn(complete(shared.clone(), done_rx));

        let mut fetchers = JoinSet::new();
        for (queue, concurrency) in shared.settings.queues.clone() {
            let wake = wakes.get(&queue).cloned().unwrap_or_default();
            fetchers.spawn(fetch(shared.clone(), queue, concurrency.max(1), wake, shutdown.clone()));
        }
        while fetchers.join_next().await.is_some() {}

        let _ = bg_stop_tx.send(true);
        while background.join_next().await.is_some() {}
        drop(shared);
        let _ = completer.await;
        tracing::info!("Job workers stopped");
    }
}

/// Claims and runs the jobs of one queue; returns after shutdown once its jobs are finished or
/// released.
async fn fetch(
    shared: Arc<Shared>,
    queue: String,
    concurrency: usize,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut running: JoinSet<()> = JoinSet::new();
    let mut leases: HashMap<tokio::task::Id, (Uuid, Uuid)> = HashMap::new();
    // At most `concurrency` jobs run at once; as many again may be claimed ahead (under lease,
    // heartbeated) so that short jobs are claimed in batches rather than one round trip each.
    let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let capacity = concurrency * 2;
    // Claims wait until at least half the concurrency is free, so that a busy queue claims many
    // jobs per round trip instead of one per finished job. No slot idles for it: with fewer than
    // this free, more than half the concurrency is claimed ahead and waiting for a slot.
    let refill = (concurrency / 2).max(1);
    loop {
        while let Some(done) = running.try_join_next_with_id() {
            forget(&mut leases, done);
        }
        if *shutdown.borrow() {
            break;
        }
        let free = capacity.saturating_sub(running.len());
        if free < refill {
            tokio::select! {
                done = running.join_next_with_id() => if let Some(done) = done { forget(&mut leases, done) },
                _ = shutdown.changed() => {}
            }
            continue;
        }
        // Listen before looking, so a wake-up that lands during the claim is not lost.
        let in_process = berth_core::store::jobs::WAKE.notified();
        tokio::pin!(in_process);
        in_process.as_mut().enable();
        let claimed =
            match store::claim(&shared.db, &queue, free, &shared.settings.worker_id, shared.settings.lease).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(queue = %queue, error = %e, "Could not claim jobs; will retry");
                    tokio::select! {
                        _ = tokio::time::sleep(shared.settings.poll) => {}
                        _ = shutdown.changed() => {}
                    }
                    continue;
                }
            };
        let got = claimed.len();
        for job in claimed {
            let pair = (job.id, job.lease_id);
            let handle = running.spawn(run_job(shared.clone(), queue.clone(), job, slots.clone()));
            leases.insert(handle.id(), pair);
        }
        if got < free {
            tokio::select! {
                _ = wake.notified() => {}
                _ = &mut in_process => {}
                _ = tokio::time::sleep(shared.settings.poll) => {}
                done = running.join_next_with_id(), if !running.is_empty() => if let Some(done) = done { forget(&mut leases, done) },
                _ = shutdown.changed() => {}
            }
        }
    }

    // Shutdown: let running jobs finish within the grace period, then give the rest back.
    let grace = shared.settings.shutdown_grace;
    let drained = tokio::time::timeout(grace, async {
        while let Some(done) = running.join_next_with_id().await {
            forget(&mut leases, done);
        }
    })
    .await;
    if drained.is_err() {
        running.abort_all();
        while let Some(done) = running.join_next_with_id().await {
            // Cancelled jobs keep their entry: those are the ones to release below.
            if !matches!(&done, Err(e) if e.is_cancelled()) {
                forget(&mut leases, done);
            }
        }
        // Completions already handed to the completer are written first, so a job that did
        // finish is not released and run again.
        let (tx, rx) = oneshot::channel();
        if shared.done.send(Done::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
        for (id, lease) in leases.into_values() {
            shared.held().remove(&id);
            match store::release(&shared.db, id, lease).await {
                Ok(true) => tracing::info!(job.id = %id, queue = %queue, "Released a running job at shutdown"),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(job.id = %id, error = %e, "Could not release a job at shutdown; its lease will expire")
                }
            }
        }
    }
}

fn forget(
    leases: &mut HashMap<tokio::task::Id, (Uuid, Uuid)>,
    done: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
) {
    let id = match done {
        Ok((id, ())) => id,
        Err(e) => e.id(),
    };
    leases.remove(&id);
}

/// Runs one claimed job to its outcome.
async fn run_job(shared: Arc<Shared>, queue: String, job: Claimed, slots: Arc<tokio::sync::Semaphore>) {
    let lost = Arc::new(Notify::new());
    shared.held().insert(job.id, Held { lease: job.lease_id, lost: lost.clone() });
    // The semaphore is never closed; if it were, running without a slot is the lesser harm.
    let _slot = slots.acquire_owned().await.ok();
    let waited = (chrono::Utc::now() - job.run_at).to_std().unwrap_or_default();
    shared.metrics.start_latency.with_label_values(&[queue.as_str()]).observe(waited.as_secs_f64());

    let ctx = JobContext {
        env: shared.env.clone(),
        job_id: job.id,
        lease_id: job.lease_id,
        attempt: job.attempts,
        max_attempts: job.max_attempts,
        customer_id: job.customer_id,
        flow_run_id: job.flow_run_id,
        flows: shared.flows.clone(),
    };
    let started = Instant::now();
    let outcome = match shared.registry.get(&job.kind).cloned() {
        None => Some(Err(anyhow::anyhow!("this worker has no handler for job kind `{}`", job.kind))),
        Some(kind) => {
            // Its own task, so a panic becomes an error and a lost lease can cancel it.
            let mut handle = tokio::spawn({
                let payload = job.payload.clone();
                async move { kind.run(payload, ctx).await }
            });
            tokio::select! {
                res = &mut handle => Some(match res {
                    Ok(r) => r,
                    Err(e) if e.is_panic() => Err(anyhow::anyhow!("job panicked: {}", panic_message(e))),
                    Err(e) => Err(anyhow::anyhow!("job task ended: {e}")),
                }),
                _ = lost.notified() => {
                    handle.abort();
                    None
                }
            }
        }
    };
    let took = started.elapsed();
    match outcome {
        None => {
            shared.held().remove(&job.id);
            shared.metrics.duration.with_label_values(&[job.kind.as_str(), "lost"]).observe(took.as_secs_f64());
        }
        Some(Ok(())) => {
            // Stays in `held` (heartbeats go on) until the completer has written it.
            let _ = shared.done.send(Done::Ok { id: job.id, lease: job.lease_id, kind: job.kind, took });
        }
        Some(Err(e)) => {
            shared.held().remove(&job.id);
            let error = format!("{e:#}");
            let delay = backoff::jittered(job.attempts);
            shared.metrics.duration.with_label_values(&[job.kind.as_str(), "failed"]).observe(took.as_secs_f64());
            match store::fail(&shared.db, &job, &error, delay).await {
                Ok(Failed::Retry(at)) => {
                    shared.metrics.failures.with_label_values(&[job.kind.as_str(), "retry"]).inc();
                    tracing::warn!(job.id = %job.id, job.kind = %job.kind, attempt = job.attempts, retry_at = %at, error = %error, "Job failed; will retry");
                }
                Ok(Failed::Dead) => {
                    shared.metrics.failures.with_label_values(&[job.kind.as_str(), "dead"]).inc();
                    tracing::error!(job.id = %job.id, job.kind = %job.kind, attempt = job.attempts, error = %error, "Job failed on its last attempt and is dead");
                }
                Ok(Failed::LostLease) => {
                    tracing::warn!(job.id = %job.id, job.kind = %job.kind, "Job failed but had lost its lease to another worker; its failure was not recorded");
                }
                Err(db) => {
                    tracing::warn!(job.id = %job.id, error = %db, "Could not record a job failure; its lease will expire and it will run again");
                }
            }
        }
    }
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into()),
        Err(e) => e.to_string(),
    }
}

/// Marks finished jobs done, many per statement: whatever finished while the previous batch was
/// being written goes in the next one.
async fn complete(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Done>) {
    const MAX_BATCH: usize = 1000;
    // The sender lives in `shared`; stop when only this task still holds it.
    loop {
        let first = tokio::select! {
            m = rx.recv() => m,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if Arc::strong_count(&shared) == 1 && rx.is_empty() { return; }
                continue;
            }
        };
        let Some(first) = first else { return };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut acks = Vec::new();
        let mut finished = Vec::with_capacity(batch.len());
        for m in batch {
            match m {
                Done::Ok { id, lease, kind, took } => finished.push((id, lease, kind, took)),
                Done::Flush(ack) => acks.push(ack),
            }
        }
        let pairs: Vec<(Uuid, Uuid)> = finished.iter().map(|f| (f.0, f.1)).collect();
        let mut result = store::complete(&shared.db, &pairs).await;
        for _ in 0..3 {
            if result.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            result = store::complete(&shared.db, &pairs).await;
        }
        let rejected = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(jobs = pairs.len(), error = %e, "Could not mark jobs done; their leases will expire and they will run again");
                pairs.iter().map(|p| p.0).collect()
            }
        };
        let mut held = shared.held();
        for (id, _, kind, took) in &finished {
            held.remove(id);
            let outcome = if rejected.contains(id) {
                tracing::warn!(job.id = %id, job.kind = %kind, "Job finished but had lost its lease to another worker; its completion was rejected");
                "lost"
            } else {
                "done"
            };
            shared.metrics.duration.with_label_values(&[kind.as_str(), outcome]).observe(took.as_secs_f64());
        }
        drop(held);
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

/// Renews the leases of running jobs every third of the lease; a job whose lease turns out to be
/// someone else's is cancelled here.
async fn heartbeat(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let every = shared.settings.lease / 3;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let pairs: Vec<(Uuid, Uuid)> = shared.held().iter().map(|(id, h)| (*id, h.lease)).collect();
        if pairs.is_empty() {
            continue;
        }
        match store::heartbeat(&shared.db, &pairs, shared.settings.lease).await {
            Ok(lost) => {
                let mut held = shared.held();
                for id in lost {
                    if let Some(h) = held.remove(&id) {
                        tracing::warn!(job.id = %id, "Job lost its lease to another worker (this worker was too slow to heartbeat); abandoning it");
                        h.lost.notify_one();
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "Could not renew job leases; will retry"),
        }
    }
}

/// Reaps expired leases and refreshes the queue-depth gauge.
async fn maintenance(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let every = (shared.settings.lease / 2).clamp(Duration::from_millis(200), Duration::from_secs(10));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_depth = Instant::now() - Duration::from_secs(60);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        match store::reap(&shared.db).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(jobs = n, "Took back jobs whose worker stopped heartbeating"),
            Err(e) => tracing::warn!(error = %e, "Could not reap expired job leases; will retry"),
        }
        if last_depth.elapsed() >= Duration::from_secs(5) {
            last_depth = Instant::now();
            if let Ok(rows) = store::depth(&shared.db).await {
                shared.metrics.depth.reset();
                for (queue, state, n) in rows {
                    shared.metrics.depth.with_label_values(&[queue.as_str(), state.as_str()]).set(n);
                }
            }
        }
    }
}

/// PostgreSQL LISTEN: wakes the fetcher of the queue named in each notification.
async fn listen(db: DatabaseConnection, wakes: HashMap<String, Arc<Notify>>, mut stop: watch::Receiver<bool>) {
    let pool = db.get_postgres_connection_pool().clone();
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "Could not LISTEN for new jobs; polling until it works");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        if let Err(e) = listener.listen(berth_core::store::jobs::NOTIFY_CHANNEL).await {
            tracing::warn!(error = %e, "Could not LISTEN for new jobs; polling until it works");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                _ = stop.changed() => return,
            }
        }
        loop {
            tokio::select! {
                n = listener.recv() => match n {
                    Ok(n) => {
                        if let Some(w) = wakes.get(n.payload()) {
                            w.notify_one();
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "Lost the LISTEN connection; reconnecting");
                        // Jobs enqueued meanwhile are found by the poll.
                        for w in wakes.values() {
                            w.notify_one();
                        }
                        break;
                    }
                },
                _ = stop.changed() => return,
            }
        }
    }
}
