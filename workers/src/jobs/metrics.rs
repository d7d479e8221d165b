//! Runs the monitoring jobs defined in `berth_core::jobs::metrics`: the collector and the
//! rollups. The collector's memory between cycles (the previous CPU reading of each container,
//! the partition day it prepared) lives in [`Collector`], one per process, in the worker
//! environment; a cycle that finds no previous reading records no CPU percentage for it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use berth_core::config::IngressMode;
use berth_core::jobs::metrics::{CheckUptime, CollectMetrics, MeasureDisk, RollupMetrics};
use berth_core::store::metrics::{self as store, Check, Sample, Target};
use berth_runtime::stats::{CgroupLayout, ContainerStats};
use chrono::Utc;
use futures_util::StreamExt;
use prometheus::{GaugeVec, Histogram, HistogramOpts, IntCounter, IntGaugeVec, Opts, Registry};

use crate::env::Env;
use crate::queue::{JobContext, RunJob};

/// At most this many stats API calls at once when the cgroups cannot be read.
const STATS_API_CONCURRENCY: usize = 4;
/// At most this many uptime requests at once.
const CHECK_CONCURRENCY: usize = 16;
/// An uptime check that takes longer counts as down.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
const LABELS: [&str; 3] = ["customer", "site", "domain"];

/// The collector's state in this process, and the per-site Prometheus series it keeps.
pub struct Collector {
    /// Where this host's container cgroups are; `None` with a remote engine.
    layout: Option<CgroupLayout>,
    /// Per container id: when it was last read and its CPU time then (µs).
    previous: Mutex<HashMap<String, (i64, u64)>>,
    /// The UTC day whose partitions were last made sure of.
    partition_day: Mutex<Option<i64>>,
    gauges: SiteGauges,
    /// The client of the uptime checks (no redirects followed: a redirect is an answer).
    http: reqwest::Client,
}

struct SiteGauges {
    cpu: GaugeVec,
    memory: IntGaugeVec,
    memory_limit: IntGaugeVec,
    net_rx: IntGaugeVec,
    net_tx: IntGaugeVec,
    block_read: IntGaugeVec,
    block_write: IntGaugeVec,
    pids: IntGaugeVec,
    restarts: IntGaugeVec,
    up: IntGaugeVec,
    response: GaugeVec,
    disk: IntGaugeVec,
    disk_limit: IntGaugeVec,
    cycle_seconds: Histogram,
    errors: IntCounter,
}

impl Collector {
    /// Reads cgroups directly when the engine is this host's (`unix://` socket) and the host
    /// mounts them; otherwise every reading goes through the stats API.
    pub fn new(local_engine: bool, registry: &Registry) -> Self {
        let layout = if local_engine { CgroupLayout::detect() } else { None };
        Self {
            layout,
            previous: Mutex::new(HashMap::new()),
            partition_day: Mutex::new(None),
            gauges: SiteGauges::new(registry),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(CHECK_TIMEOUT)
                .connect_timeout(std::time::Duration::from_secs(2))
                .build()
                .unwrap_or_default(),
        }
    }
}

fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    if let Err(e) = registry.register(Box::new(c.clone())) {
        tracing::debug!(error = %e, "Site metric already registered");
    }
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGaugeVec {
    // Static definitions: `new` only fails on an invalid name, which the unit test catches.
    register(registry, IntGaugeVec::new(Opts::new(name, help), &LABELS).expect("valid metric definition"))
}

impl SiteGauges {
    fn new(r: &Registry) -> Self {
        Self {
            cpu: register(
                r,
                GaugeVec::new(
                    Opts::new("berth_site_cpu_percent", "CPU use of a site's container, in percent of one core"),
                    &LABELS,
                )
                .expect("valid metric definition"),
            ),
            memory: gauge(r, "berth_site_memory_bytes", "Memory in use by a site's container (page cache excluded)"),
            memory_limit: gauge(r, "berth_site_memory_limit_bytes", "Memory limit of a site's container"),
            net_rx: gauge(
                r,
                "berth_site_network_receive_bytes",
                "Bytes received by a site's container since it started",
            ),
            net_tx: gauge(r, "berth_site_network_transmit_bytes", "Bytes sent by a site's container since it started"),
            block_read: gauge(
                r,
                "berth_site_block_read_bytes",
                "Bytes read from disk by a site's container since it started",
            ),
            block_write: gauge(
                r,
                "berth_site_block_write_bytes",
                "Bytes written to disk by a site's container since it started",
            ),
            pids: gauge(r, "berth_site_pids", "Processes in a site's container"),
            restarts: gauge(r, "berth_site_restarts", "How often Docker restarted a site's container"),
            up: gauge(r, "berth_site_up", "1 when the last uptime check through the ingress got a non-5xx answer"),
            response: register(
                r,
                GaugeVec::new(
                    Opts::new("berth_site_response_seconds", "Duration of the last uptime check through the ingress"),
                    &LABELS,
                )
                .expect("valid metric definition"),
            ),
            disk: register(
                r,
                IntGaugeVec::new(
                    Opts::new("berth_site_disk_bytes", "Disk use of a site's data volume (measured every few minutes)"),
                    &["customer", "site"],
                )
                .expect("valid metric definition"),
            ),
            disk_limit: register(
                r,
                IntGaugeVec::new(
                    Opts::new("berth_site_disk_limit_bytes", "The storage of a site's plan"),
                    &["customer", "site"],
                )
                .expect("valid metric definition"),
            ),
            cycle_seconds: register(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "berth_metrics_collect_duration_seconds",
                        "Duration of one metrics collection cycle",
                    )
                    .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]),
                )
                .expect("valid metric definition"),
            ),
            errors: register(
                r,
                IntCounter::new("berth_metrics_collect_errors_total", "Site containers the collector could not read")
                    .expect("valid metric definition"),
            ),
        }
    }

    /// Replaces every site's series with this cycle's: sites gone since the last cycle vanish.
    fn publish(&self, readings: &[(Target, ContainerStats, Option<f64>)]) {
        for g in [
            &self.memory,
            &self.memory_limit,
            &self.net_rx,
            &self.net_tx,
            &self.block_read,
            &self.block_write,
            &self.pids,
            &self.restarts,
        ] {
            g.reset();
        }
        self.cpu.reset();
        for (t, s, cpu) in readings {
            let (customer, site) = (t.customer_id.to_string(), t.site_id.to_string());
            let labels = [customer.as_str(), site.as_str(), t.domain.as_str()];
            let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            if let Some(cpu) = cpu {
                self.cpu.with_label_values(&labels).set(*cpu);
            }
            self.memory.with_label_values(&labels).set(int(s.memory_bytes));
            self.memory_limit.with_label_values(&labels).set(int(s.memory_limit_bytes));
            self.net_rx.with_label_values(&labels).set(int(s.net_rx_bytes));
            self.net_tx.with_label_values(&labels).set(int(s.net_tx_bytes));
            self.block_read.with_label_values(&labels).set(int(s.block_read_bytes));
            self.block_write.with_label_values(&labels).set(int(s.block_write_bytes));
            self.pids.with_label_values(&labels).set(int(s.pids));
            self.restarts.with_label_values(&labels).set(t.restarts);
        }
    }
}

#[async_trait]
impl RunJob for CollectMetrics {
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let started = Instant::now();
        let env = ctx.env.as_ref();
        let collector = &env.collector;
        let targets = store::targets(ctx.db()).await?;
        let readings = read_all(env, targets).await;
        let now = Utc::now();
        let now_ms = now.timestamp_millis();
        let mut samples = Vec::with_capacity(readings.len());
        let mut published = Vec::with_capacity(readings.len());
        {
            let mut previous = collector.previous.lock().unwrap_or_else(|e| e.into_inner());
            let mut seen = HashMap::with_capacity(readings.len());
            for (target, stats) in readings {
                let cpu = previous.get(&target.container_id).and_then(|&(at, usec)| {
                    let wall_us = (now_ms - at) * 1000;
                    (wall_us > 0 && stats.cpu_usec >= usec)
                        .then(|| (stats.cpu_usec - usec) as f64 * 100.0 / wall_us as f64)
                });
                seen.insert(target.container_id.clone(), (now_ms, stats.cpu_usec));
                samples.push(sample(&target, &stats, cpu, now));
                published.push((target, stats, cpu));
            }
            // Containers gone since the last cycle are forgotten.
            *previous = seen;
        }
        let day = now_ms.div_euclid(86_400_000);
        let prepared = *collector.partition_day.lock().unwrap_or_else(|e| e.into_inner()) == Some(day);
        if !prepared {
            store::ensure_partitions(ctx.db(), now).await?;
            *collector.partition_day.lock().unwrap_or_else(|e| e.into_inner()) = Some(day);
        }
        store::insert_samples(ctx.db(), &samples).await?;
        collector.gauges.publish(&published);
        collector.gauges.cycle_seconds.observe(started.elapsed().as_secs_f64());
        Ok(())
    }
}

/// Reads every target, from its cgroup when possible and from the stats API otherwise. A
/// container that cannot be read (it just stopped) is counted and skipped.
async fn read_all(env: &Env, targets: Vec<Target>) -> Vec<(Target, ContainerStats)> {
    let collector = &env.collector;
    let mut out = Vec::with_capacity(targets.len());
    let mut remote = Vec::new();
    for t in targets {
        match collector.layout.as_ref().and_then(|l| l.read(&t.container_id)) {
            Some(stats) => out.push((t, stats)),
            None => remote.push(t),
        }
    }
    let Some(rt) = env.runtime.as_ref() else { return out };
    let fetched: Vec<_> = futures_util::stream::iter(remote)
        .map(|t| async move {
            let stats = rt.docker.stats_once(&t.container_id).await;
            (t, stats)
        })
        .buffer_unordered(STATS_API_CONCURRENCY)
        .collect()
        .await;
    for (t, stats) in fetched {
        match stats {
            Ok(stats) => out.push((t, stats)),
            Err(e) => {
                collector.gauges.errors.inc();
                tracing::debug!(site.id = %t.site_id, error = %e, "Cannot read a site container's usage");
            }
        }
    }
    out
}

fn sample(t: &Target, s: &ContainerStats, cpu_percent: Option<f64>, at: chrono::DateTime<Utc>) -> Sample {
    let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    Sample {
        site_id: t.site_id,
        customer_id: t.customer_id,
        at,
        cpu_usec: int(s.cpu_usec),
        cpu_percent,
        memory_bytes: int(s.memory_bytes),
        memory_limit_bytes: int(s.memory_limit_bytes),
        net_rx_bytes: int(s.net_rx_bytes),
        net_tx_bytes: int(s.net_tx_bytes),
        block_read_bytes: int(s.block_read_bytes),
        block_write_bytes: int(s.block_write_bytes),
        pids: int(s.pids),
        restarts: t.restarts,
    }
}

#[async_trait]
impl RunJob for CheckUptime {
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let env = ctx.env.as_ref();
        let runtime = &env.config.runtime;
        if env.runtime.is_none() || runtime.ingress_mode == IngressMode::Off {
            return Ok(());
        }
        let url = format!("http://{}/", runtime.ingress_listen);
        let targets: Vec<Target> = store::targets(ctx.db()).await?.into_iter().filter(|t| t.routed).collect();
        let http = &env.collector.http;
        let checks: Vec<(Target, Check)> = futures_util::stream::iter(targets)
            .map(|t| {
                let url = url.clone();
                async move {
                    let at = Utc::now();
                    let started = Instant::now();
                    let answer = http.get(&url).header(reqwest::header::HOST, &t.domain).send().await;
                    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
                    let (status_code, up, error) = match answer {
                        Ok(res) => {
                            let status = res.status();
                            (Some(i32::from(status.as_u16())), !status.is_server_error(), None)
                        }
                        Err(e) => (None, false, Some(e.to_string())),
                    };
                    let check = Check {
                        site_id: t.site_id,
                        customer_id: t.customer_id,
                        at,
                        status_code,
                        latency_ms,
                        up,
                        error,
                    };
                    (t, check)
                }
            })
            .buffer_unordered(CHECK_CONCURRENCY)
            .collect()
            .await;
        let rows: Vec<Check> = checks.iter().map(|(_, c)| c.clone()).collect();
        store::insert_checks(ctx.db(), &rows).await?;
        let gauges = &env.collector.gauges;
        gauges.up.reset();
        gauges.response.reset();
        for (t, c) in &checks {
            let (customer, site) = (t.customer_id.to_string(), t.site_id.to_string());
            let labels = [customer.as_str(), site.as_str(), t.domain.as_str()];
            gauges.up.with_label_values(&labels).set(i64::from(c.up));
            gauges.response.with_label_values(&labels).set(c.latency_ms as f64 / 1000.0);
        }
        Ok(())
    }
}

/// A volume walk stops after this many entries (a site with millions of small files is then
/// reported as at least what was counted).
const DISK_MAX_FILES: u64 = 1_000_000;
/// At most this many volumes are walked at once.
const DISK_CONCURRENCY: usize = 2;

#[async_trait]
impl RunJob for MeasureDisk {
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let env = ctx.env.as_ref();
        let Some(rt) = env.runtime.as_ref() else { return Ok(()) };
        let targets = store::disk_targets(ctx.db()).await?;
        let measured: Vec<Option<store::DiskUsage>> = futures_util::stream::iter(targets)
            .map(|t| async move {
                let volume = rt.names.volume(t.site_id);
                let mountpoint = match rt.docker.volume_mountpoint(&volume).await {
                    Ok(Some(path)) => path,
                    Ok(None) => return None,
                    Err(e) => {
                        tracing::debug!(site.id = %t.site_id, error = %e, "Cannot inspect a site volume");
                        return None;
                    }
                };
                let walked =
                    tokio::task::spawn_blocking(move || berth_runtime::disk::walk(&mountpoint, DISK_MAX_FILES)).await;
                match walked {
                    Ok(Ok(usage)) => Some(store::DiskUsage {
                        site_id: t.site_id,
                        customer_id: t.customer_id,
                        at: Utc::now(),
                        bytes: i64::try_from(usage.bytes).unwrap_or(i64::MAX),
                        files: i64::try_from(usage.files).unwrap_or(i64::MAX),
                        limit_bytes: t.limit_bytes,
                        complete: usage.complete,
                    }),
                    Ok(Err(e)) => {
                        tracing::warn!(site.id = %t.site_id, error = %e, "Cannot measure a site volume (is Berth on the Docker host, with read access to its volumes?)");
                        None
                    }
                    Err(e) => {
                        tracing::warn!(site.id = %t.site_id, error = %e, "The volume walk failed");
                        None
                    }
                }
            })
            .buffer_unordered(DISK_CONCURRENCY)
            .collect()
            .await;
        let rows: Vec<store::DiskUsage> = measured.into_iter().flatten().collect();
        let gauges = &env.collector.gauges;
        gauges.disk.reset();
        gauges.disk_limit.reset();
        for d in &rows {
            let (customer, site) = (d.customer_id.to_string(), d.site_id.to_string());
            let labels = [customer.as_str(), site.as_str()];
            gauges.disk.with_label_values(&labels).set(d.bytes);
            gauges.disk_limit.with_label_values(&labels).set(d.limit_bytes);
            if d.limit_bytes > 0 && d.bytes > d.limit_bytes {
                tracing::warn!(site.id = %d.site_id, bytes = d.bytes, limit_bytes = d.limit_bytes, "A site volume holds more than its plan's storage");
            }
        }
        store::insert_disk_usage(ctx.db(), &rows).await?;
        Ok(())
    }
}

#[async_trait]
impl RunJob for RollupMetrics {
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let now = Utc::now();
        store::ensure_partitions(ctx.db(), now).await?;
        store::rollup(ctx.db(), now).await?;
        store::prune(ctx.db(), now, &ctx.env.config.metrics).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn metric_definitions_are_valid_and_register_once() {
        let registry = prometheus::Registry::new();
        let _a = super::SiteGauges::new(&registry);
        let b = super::SiteGauges::new(&registry);
        b.memory.with_label_values(&["c", "s", "d"]).set(1);
        b.errors.inc();
        assert!(registry.gather().iter().any(|f| f.name() == "berth_metrics_collect_errors_total"));
    }
}
