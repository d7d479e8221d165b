//! Prometheus metrics of the queue: depth by queue and state, job durations by kind and
//! outcome, failures, and enqueue-to-start latency. Registered into the registry the server
//! exposes on /metrics (the workers never depend on the server: the registry is passed in).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    pub depth: IntGaugeVec,
    pub duration: HistogramVec,
    pub failures: IntCounterVec,
    pub start_latency: HistogramVec,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`. In a registry that already has
    /// them (a second pool in one process), the first set stays registered and this one is not
    /// exposed: registration never fails the workers.
    pub fn new(registry: &Registry) -> Self {
        let metrics = Self::unregistered();
        let collectors: [Box<dyn prometheus::core::Collector>; 4] = [
            Box::new(metrics.depth.clone()),
            Box::new(metrics.duration.clone()),
            Box::new(metrics.failures.clone()),
            Box::new(metrics.start_latency.clone()),
        ];
        for c in collectors {
            if let Err(e) = registry.register(c) {
                tracing::debug!(error = %e, "Queue metric already registered");
            }
        }
        metrics
    }

    /// Metrics that no registry exposes (tests, `berth worker` without an HTTP endpoint).
    pub fn unregistered() -> Self {
        // The definitions are static; `new` only fails on an invalid name, which tests catch.
        let depth = IntGaugeVec::new(
            Opts::new("berth_jobs", "Jobs in the queue by queue and state (queued, running, dead)"),
            &["queue", "state"],
        )
        .expect("static metric definition is valid");
        let duration = HistogramVec::new(
            HistogramOpts::new("berth_job_duration_seconds", "Job run time by kind and outcome")
                .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0]),
            &["kind", "outcome"],
        )
        .expect("static metric definition is valid");
        let failures = IntCounterVec::new(
            Opts::new("berth_job_failures_total", "Failed job runs by kind and result (retry, dead)"),
            &["kind", "result"],
        )
        .expect("static metric definition is valid");
        let start_latency = HistogramVec::new(
            HistogramOpts::new(
                "berth_job_start_latency_seconds",
                "Time from a job becoming runnable to a worker starting it, by queue",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0]),
            &["queue"],
        )
        .expect("static metric definition is valid");
        Self { depth, duration, failures, start_latency }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn definitions_are_valid_and_register_once() {
        let registry = prometheus::Registry::new();
        let a = super::Metrics::new(&registry);
        let _b = super::Metrics::new(&registry);
        a.failures.with_label_values(&["x", "dead"]).inc();
        assert!(registry.gather().iter().any(|f| f.name() == "berth_job_failures_total"));
    }
}
