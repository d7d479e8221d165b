//! The reconciler: a level-triggered loop that converges Docker (actual state) to the
//! database (desired state).
//!
//! It wakes every `BERTH_RECONCILE_INTERVAL_SECONDS`, on every Docker event about Berth's
//! objects, and when asked to ([`Runtime::reconcile_soon`], after a change). Each pass reads every site, lists Berth's containers
//! by label, converges each site ([`berth_runtime::converge`]), removes orphans, records what
//! it saw, then re-renders the ingress from the recorded addresses.
//!
//! Several Berth processes may run it at once. On PostgreSQL a pass first takes a
//! transaction-scoped advisory lock and skips when another process holds it; the deterministic
//! container name (`berth-<site id>`) is the second guard, since a create that collides with an
//! existing name adopts that container instead of making another.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_core::crypto::Keys;
use berth_core::store::site_state;
use berth_runtime::converge::{Converger, Outcome};
use berth_runtime::engine::EngineEvent;
use berth_runtime::{Runtime, RuntimeError};
use futures_util::StreamExt;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement, TransactionTrait};
use tokio::sync::{watch, Notify};

use crate::env::Env;

/// Waits this long after a Docker event so a burst of them makes one pass. A change made
/// through Berth ([`Runtime::reconcile_soon`]) starts a pass at once: nudges that come while a
/// pass runs make one more pass after it anyway (the wake-up is stored once), so waiting only
/// delayed a new site by the debounce.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// Runs until `shutdown` turns true. Berth's nginx keeps serving afterwards (see
/// [`berth_runtime::ingress::Ingress::on_exit`]). Without a container runtime in `env` there is
/// nothing to reconcile and it returns at once.
pub async fn run(env: Arc<Env>, mut shutdown: watch::Receiver<bool>) {
    let Some(rt) = env.runtime.clone() else { return };
    let (db, keys) = (&env.db, env.keys.as_ref());
    tracing::info!(interval_s = rt.interval.as_secs(), ingress = rt.ingress.mode().as_str(), "Reconciler started");
    if let Err(e) = rt.ingress.start().await {
        rt.metrics.ingress_failures.inc();
        tracing::error!(error = %e, "Cannot start the ingress; sites are not routed until this is fixed");
    }
    let events = Arc::new(Notify::new());
    let watcher = tokio::spawn(watch_events(rt.clone(), events.clone()));
    let mut tick = tokio::time::interval(rt.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = rt.wake.notified() => {}
            _ = events.notified() => tokio::time::sleep(DEBOUNCE).await,
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        pass(db, keys, &rt).await;
    }
    watcher.abort();
    rt.ingress.on_exit().await;
    tracing::info!("Reconciler stopped");
}

/// Follows Docker's event stream for Berth's objects and reconnects after a failure. Each event
/// makes the next pass look at its object afresh ([`berth_runtime::converge::Inspections`]) and
/// wakes the loop, except a health check that found the same health as the one before: Docker
/// reports every check, and at a few hundred sites those would keep the reconciler busy for
/// nothing.
pub async fn watch_events(rt: Arc<Runtime>, wake: Arc<Notify>) {
    loop {
        // Events may have been missed while the stream was down: the next pass inspects and
        // lists afresh.
        let mut health = HealthChanges::default();
        let mut stream = rt.engine.events(&rt.names.label_filter());
        // The stream subscribes on its first poll, so it is known to follow the engine only
        // once something came through it (running sites' health reports come every few
        // seconds). Marking it then also drops anything kept so far: whatever happened before
        // the subscription is seen by the next pass's fresh listing.
        let mut following = false;
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => {
                    if !following {
                        following = true;
                        rt.inspections.watched(true);
                    }
                    if !health.changed(&event) {
                        continue;
                    }
                    if event.kind == "container" {
                        rt.inspections.forget(&event.id);
                        if let Some(name) = &event.name {
                            rt.inspections.forget(name);
                        }
                    } else {
                        // A network's connect/disconnect changes a container's networks.
                        rt.inspections.forget_all();
                    }
                    wake.notify_one();
                }
                Err(e) => {
                    tracing::debug!(error = %e, "Docker event stream failed; reconnecting");
                    break;
                }
            }
        }
        rt.inspections.watched(false);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The last health Docker reported per container, to tell a change from a repeat.
#[derive(Default)]
struct HealthChanges(HashMap<String, String>);

impl HealthChanges {
    /// Whether `event` says something new: any event but a health report, or a health report
    /// that differs from the container's previous one.
    fn changed(&mut self, event: &EngineEvent) -> bool {
        let Some(status) = event.action.strip_prefix("health_status") else {
            if matches!(event.action.as_str(), "destroy" | "die" | "start" | "restart") {
                // A new life of the container: its next health report is news.
                self.0.remove(&event.id);
            }
            return true;
        };
        let status = status.trim_start_matches(':').trim();
        self.0.insert(event.id.clone(), status.to_owned()).as_deref() != Some(status)
    }
}

/// One reconcile pass between two renders of the ingress. Errors are logged here, once.
pub async fn pass(db: &DatabaseConnection, keys: &Keys, rt: &Runtime) {
    let started = Instant::now();
    // First what the database says now (after a restart: what the running nginx serves), so an
    // update in this pass can move its site's route alone; last what the pass observed.
    let routed = route(db, rt).await;
    let (outcome, wrote) = match locked_pass(db, keys, rt).await {
        Ok(Some(wrote)) => ("ok", wrote),
        // Another process converged: what it recorded is read below.
        Ok(None) => ("skipped", true),
        Err(e) => {
            tracing::warn!(error = %e, "Reconcile pass failed; the next one retries");
            ("error", true)
        }
    };
    if let Err(e) = rt.ingress.supervise().await {
        tracing::warn!(error = %e, "Cannot keep Berth's nginx running");
    }
    // A pass that wrote nothing left the routes as the first render read them (a change made
    // elsewhere meanwhile asks for a pass of its own).
    if wrote || !routed {
        route(db, rt).await;
    }
    rt.metrics.passes.with_label_values(&[outcome]).inc();
    rt.metrics.pass_seconds.observe(started.elapsed().as_secs_f64());
}

/// Renders the ingress from the routes in the database; whether nginx serves them now.
async fn route(db: &DatabaseConnection, rt: &Runtime) -> bool {
    match site_state::routes(db).await {
        Ok(routes) => match rt.ingress.apply(&routes).await {
            Ok(true) => {
                rt.metrics.ingress_reloads.inc();
                tracing::info!(sites = routes.len(), "Ingress configuration installed");
                true
            }
            Ok(false) => true,
            Err(e) => {
                rt.metrics.ingress_failures.inc();
                tracing::error!(error = %e, "Ingress configuration not installed; the previous one stays");
                false
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "Cannot read the routes for the ingress");
            false
        }
    }
}

/// Takes the cross-process guard and converges: whether the pass wrote to the database, or
/// `None` when another process holds the guard.
async fn locked_pass(db: &DatabaseConnection, keys: &Keys, rt: &Runtime) -> anyhow::Result<Option<bool>> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        // SQLite is the embedded, single-process setup: nobody to race with.
        return converge_all(db, keys, rt).await.map(Some);
    }
    let txn = db.begin().await?;
    let row = txn
        .query_one(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_try_advisory_xact_lock($1) AS locked",
            [lock_key(rt.names.instance()).into()],
        ))
        .await?;
    let locked: bool = match row {
        Some(r) => r.try_get("", "locked")?,
        None => false,
    };
    if !locked {
        txn.rollback().await?;
        return Ok(None);
    }
    let res = converge_all(db, keys, rt).await;
    // Ending the transaction releases the lock, whatever the pass did.
    txn.commit().await?;
    res.map(Some)
}

/// The advisory lock key of one installation: a stable 64-bit hash of its Docker prefix.
fn lock_key(instance: &str) -> i64 {
    // FNV-1a: stable across Rust versions and processes (std's hasher is not).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in b"berth-reconciler:".iter().chain(instance.as_bytes()) {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

/// Converges every site; whether it wrote to the database (observed state or a deletion).
async fn converge_all(db: &DatabaseConnection, keys: &Keys, rt: &Runtime) -> anyhow::Result<bool> {
    let sites = site_state::desired_all(db, keys).await?;
    // The listing of the last pass that found nothing to do, while no engine event came since
    // (the event watcher forgets it): an idle pass then makes no engine call at all.
    let listed_at = Instant::now();
    let (containers, fresh) = match rt.inspections.listing(listed_at) {
        Ok(kept) => {
            rt.metrics.listings_kept.inc();
            (kept, None)
        }
        Err(generation) => (rt.engine.containers(&rt.names.label_filter()).await?, Some(generation)),
    };
    let by_name: HashMap<&str, &berth_runtime::engine::ContainerInfo> =
        containers.iter().map(|c| (c.name.as_str(), c)).collect();
    rt.metrics.sites.set(sites.len() as i64);
    let mut converger = Converger::new(rt);
    // Sites are converged one after the other (they share the engine and the image cache); the
    // addresses of those serving are then probed together, and what was observed is recorded.
    let mut serving = Vec::new();
    let mut failure = None;
    let mut wrote = false;
    for d in &sites {
        let current = by_name.get(rt.names.container(d.site.id).as_str()).copied();
        let next = by_name.get(rt.names.next_container(d.site.id).as_str()).copied();
        match converger.site(d, current, next).await {
            Ok(Outcome::Observed(observed)) => {
                wrote |= site_state::record(db, &d.site, &observed).await?;
            }
            Ok(Outcome::Serving(observed)) => {
                let was_unreachable = d.site.health.as_deref() == Some(berth_runtime::converge::UNREACHABLE);
                serving.push((d, (d.site.id, observed, was_unreachable)));
            }
            Ok(Outcome::Deleted) => {
                wrote = true;
                site_state::finish_delete(db, &d.site).await?;
                tracing::info!(site.id = %d.site.id, "Site deleted");
            }
            // The engine is gone: nothing else in this pass can succeed (what was observed
            // before is still recorded below).
            Err(e @ RuntimeError::Unavailable(_)) => {
                failure = Some(e);
                break;
            }
            Err(e) => {
                tracing::warn!(site.id = %d.site.id, error = %e, "Cannot converge the site; the next pass retries")
            }
        }
    }
    let (desired, probes): (Vec<_>, Vec<_>) = serving.into_iter().unzip();
    for (d, observed) in desired.into_iter().zip(berth_runtime::converge::probe_all(probes).await) {
        wrote |= site_state::record(db, &d.site, &observed).await?;
    }
    if let Some(e) = failure {
        rt.inspections.forget_listing();
        return Err(e.into());
    }
    let idle = converger.untouched() == sites.len();
    match fresh {
        // Nothing changed since the kept listing, which found no orphans: none to look for.
        None if idle => {}
        None => rt.inspections.forget_listing(),
        Some(generation) => {
            let removed = converger.orphans(&sites, &containers).await?;
            if idle && !removed {
                rt.inspections.keep_listing(containers, listed_at, generation);
            }
        }
    }
    Ok(wrote)
}

#[cfg(test)]
mod tests {
    use super::{EngineEvent, HealthChanges};

    fn event(action: &str) -> EngineEvent {
        EngineEvent { kind: "container".into(), action: action.into(), id: "c1".into(), name: None }
    }

    #[test]
    fn only_a_change_of_health_is_news() {
        let mut h = HealthChanges::default();
        assert!(h.changed(&event("health_status: starting")));
        assert!(h.changed(&event("health_status: healthy")));
        assert!(!h.changed(&event("health_status: healthy")));
        assert!(!h.changed(&event("health_status: healthy")));
        assert!(h.changed(&event("health_status: unhealthy")));
        assert!(h.changed(&event("die")));
        assert!(h.changed(&event("start")));
        assert!(h.changed(&event("health_status: unhealthy")), "a restarted container's first report is news");
        let other = EngineEvent { id: "c2".into(), ..event("health_status: unhealthy") };
        assert!(h.changed(&other));
    }

    #[test]
    fn lock_keys_are_stable_and_per_installation() {
        assert_eq!(super::lock_key("berth"), super::lock_key("berth"));
        assert_ne!(super::lock_key("berth"), super::lock_key("other"));
    }
}
