//! Prometheus metrics of the runtime: drift found and healed, reconcile passes, ingress reloads.
//! Registered in the process's one registry (built at start-up and served on `/metrics`).

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct RuntimeMetrics {
    /// Drift by kind: `missing_container`, `stopped_container`, `orphan_container`,
    /// `orphan_network`, `outdated_container`, `detached_network`, `foreign_network`.
    pub drift: IntCounterVec,
    pub passes: IntCounterVec,
    pub pass_seconds: Histogram,
    /// Passes that converged from the container listing kept by an idle pass before them (no
    /// engine call at all).
    pub listings_kept: IntCounter,
    pub sites: IntGauge,
    pub ingress_reloads: IntCounter,
    pub ingress_failures: IntCounter,
}

impl RuntimeMetrics {
    /// Creates the metrics and registers them in `registry`. In a registry that already has
    /// them (a second runtime in one process, as in tests) the first set stays exposed:
    /// registration never fails start-up.
    pub fn new(registry: &Registry) -> Self {
        let drift = IntCounterVec::new(
            Opts::new(
                "berth_reconciler_drift_total",
                "Differences between desired and actual state found by the reconciler, by kind",
            ),
            &["kind"],
        )
        .expect("static metric definition is valid");
        let passes = IntCounterVec::new(
            Opts::new(
                "berth_reconciler_passes_total",
                "Reconcile passes, by outcome (ok, error, skipped: another process held the lock)",
            ),
            &["outcome"],
        )
        .expect("static metric definition is valid");
        let pass_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "berth_reconciler_pass_duration_seconds",
                "Duration of one reconcile pass, its ingress renders included",
            )
            .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
        )
        .expect("static metric definition is valid");
        let listings_kept = IntCounter::new(
            "berth_reconciler_kept_listings_total",
            "Reconcile passes that used the container listing kept by the idle pass before them instead of asking the engine",
        )
        .expect("static metric definition is valid");
        let sites = IntGauge::new("berth_reconciler_sites", "Sites seen by the last reconcile pass")
            .expect("static metric definition is valid");
        let ingress_reloads = IntCounter::new("berth_ingress_reloads_total", "nginx configurations installed")
            .expect("static metric definition is valid");
        let ingress_failures = IntCounter::new(
            "berth_ingress_failures_total",
            "nginx configurations refused by `nginx -t` or failed reloads (the working one stays)",
        )
        .expect("static metric definition is valid");
        for c in [
            Box::new(drift.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(passes.clone()),
            Box::new(pass_seconds.clone()),
            Box::new(listings_kept.clone()),
            Box::new(sites.clone()),
            Box::new(ingress_reloads.clone()),
            Box::new(ingress_failures.clone()),
        ] {
            if let Err(e) = registry.register(c) {
                tracing::debug!(error = %e, "Runtime metric already registered");
            }
        }
        Self { drift, passes, pass_seconds, listings_kept, sites, ingress_reloads, ingress_failures }
    }
}
