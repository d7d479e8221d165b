//! `berth-bench monitoring`: the monitoring figures of issue 10, measured through Berth's own
//! code on a real PostgreSQL and real containers (docs/benchmarks.md, "Monitoring (issue 10)").
//!
//! - **ingest**: samples per second through `store::metrics::insert_samples`, the one batched
//!   write the collector makes per cycle, in batches of one cycle's size;
//! - **collector**: CPU time per container per cycle of the cgroup reads
//!   (`runtime::stats::CgroupLayout::read`) over N real site containers, alone and as a whole
//!   cycle (the job's `store::metrics::targets` query, the reads, the batched insert), and what
//!   that is in % of one core at a 15 s interval. CPU time is the measuring thread's own, from
//!   `/proc/thread-self/schedstat` (nanoseconds), with everything on that one thread;
//! - **query**: the 30-day chart query of one site (`store::metrics::site_series`, what
//!   `GET /api/v1/sites/{id}/metrics` runs on a cache miss) with 30 days of synthetic 1-hour
//!   rollups, 14 days of uptime checks every 30 s and of volume measurements every 5 minutes
//!   (what retention keeps) for every site; p50 and p99.
//!
//! The first alert notification's latency needs the whole of Berth (workers, Docker, an SMTP
//! sink): it is measured by the ignored test `monitoring::bench` (docs/benchmarks.md).
//!
//! Containers carry the label `berth.bench=<run>` and the name prefix `berthbench-<run>-`; all
//! of them (and their anonymous volumes) are removed at the end, also when the run fails.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use berth_core::access::Caller;
use berth_core::crypto::Keys;
use berth_core::store::{self, metrics};
use berth_migrations::{Migrator, MigratorTrait};
use berth_runtime::stats::CgroupLayout;
use chrono::Utc;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use uuid::Uuid;

use super::Scratch;

const USAGE: &str = "usage: berth-bench monitoring [--database-url postgres://user@host:port/postgres] [--sites N]
       [--containers N] [--cycles N] [--seconds N] [--only ingest|collector|query]";

/// The collection interval the percentages are given for (the default of
/// `BERTH_METRICS_INTERVAL_SECONDS`).
const INTERVAL_SECONDS: f64 = 15.0;
/// Sites per customer (the `pro` plan allows 20).
const SITES_PER_CUSTOMER: usize = 20;

struct Options {
    database_url: Option<String>,
    sites: usize,
    containers: usize,
    cycles: usize,
    seconds: u64,
    only: Option<String>,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options { database_url: None, sites: 200, containers: 200, cycles: 20, seconds: 10, only: None };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| anyhow!("{arg} needs a value\n{USAGE}"));
        let mut number = |what: &str| -> anyhow::Result<usize> {
            value()?.parse().map_err(|_| anyhow!("{what} takes a whole number"))
        };
        match arg.as_str() {
            "--database-url" => o.database_url = Some(value()?.clone()),
            "--sites" => o.sites = number("--sites")?,
            "--containers" => o.containers = number("--containers")?,
            "--cycles" => o.cycles = number("--cycles")?,
            "--seconds" => o.seconds = number("--seconds")? as u64,
            "--only" => o.only = Some(value()?.clone()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    if o.sites == 0 || o.cycles == 0 || o.seconds == 0 {
        bail!("--sites, --cycles and --seconds must be at least 1");
    }
    if o.containers > o.sites {
        bail!("--containers ({}) cannot exceed --sites ({}): each container belongs to a site", o.containers, o.sites);
    }
    Ok(o)
}

/// Runs the group; `args` are the arguments after `monitoring`.
pub fn main(args: &[String]) -> anyhow::Result<()> {
    let opts = parse(args)?;
    let wanted = |name: &str| opts.only.as_deref().is_none_or(|o| o == name);
    let tag = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let dir = std::env::temp_dir().join(format!("berth-bench-monitoring-{tag}"));
    std::fs::create_dir_all(&dir)?;
    let mut scratch = Scratch { dir, children: vec![], postgres: None };
    let admin_url = match &opts.database_url {
        Some(url) => url.clone(),
        None => {
            eprintln!("==> starting a durable PostgreSQL");
            super::start_postgres(&mut scratch)?
        }
    };
    let db_name = format!("berth_bench_monitoring_{tag}");
    let url = match admin_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{db_name}"),
        None => bail!("--database-url must end in /<database>"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let db = rt.block_on(async {
        let admin = Database::connect(&admin_url).await.context("cannot connect to PostgreSQL")?;
        admin.execute_unprepared(&format!("CREATE DATABASE {db_name}")).await?;
        let db = Database::connect(&url).await?;
        Migrator::up(&db, None).await.map_err(|e| anyhow!("migrating the bench database: {e}"))?;
        anyhow::Ok(db)
    })?;
    eprintln!("==> {} sites of {} customers", opts.sites, opts.sites.div_ceil(SITES_PER_CUSTOMER));
    let sites = rt.block_on(make_sites(&db, opts.sites))?;
    let mut report = Vec::new();
    if wanted("ingest") {
        report.extend(rt.block_on(ingest(&db, &sites, opts.seconds))?);
    }
    if wanted("query") {
        report.extend(rt.block_on(query(&db, &sites))?);
    }
    if wanted("collector") {
        let containers = Containers::start(&rt, &tag, opts.containers)?;
        let figures = collector(&rt, &db, &url, &sites, &containers, opts.cycles);
        drop(containers);
        report.extend(figures?);
    }
    println!();
    println!("| measure | result | target |");
    println!("|---|---:|---|");
    for (measure, result, target) in report {
        println!("| {measure} | {result} | {target} |");
    }
    Ok(())
}

/// A site the bench made: ids as the collector knows them.
#[derive(Clone, Copy)]
struct BenchSite {
    id: Uuid,
    customer_id: Uuid,
}

/// `n` sites of `pro` customers (20 each), made through the store as the API makes them.
async fn make_sites(db: &DatabaseConnection, n: usize) -> anyhow::Result<Vec<BenchSite>> {
    let caller = Caller::system("berth-bench");
    let keys = Keys::derive(berth_core::crypto::random_token("").as_bytes());
    let mut out = Vec::with_capacity(n);
    for c in 0..n.div_ceil(SITES_PER_CUSTOMER) {
        let customer = store::customers::create(
            db,
            &caller,
            store::customers::NewCustomer {
                email: format!("c{c}@bench.test"),
                company_name: format!("Bench {c}"),
                plan: "pro".into(),
            },
        )
        .await?;
        for s in 0..SITES_PER_CUSTOMER.min(n - out.len()) {
            let site = store::sites::create(
                db,
                &keys,
                &caller,
                store::sites::NewSite {
                    customer_id: Some(customer.id),
                    name: format!("s{c}-{s}"),
                    image: None,
                    domains: vec![format!("s{c}-{s}.bench.test")],
                    env: Default::default(),
                },
            )
            .await?;
            out.push(BenchSite { id: site.model.id, customer_id: customer.id });
        }
    }
    Ok(out)
}

fn sample(site: &BenchSite, at: chrono::DateTime<Utc>, i: i64) -> metrics::Sample {
    metrics::Sample {
        site_id: site.id,
        customer_id: site.customer_id,
        at,
        cpu_usec: 1_000_000 + i,
        cpu_percent: Some(3.5),
        memory_bytes: 12 << 20,
        memory_limit_bytes: 1 << 30,
        net_rx_bytes: 10_000 + i,
        net_tx_bytes: 20_000 + i,
        block_read_bytes: 0,
        block_write_bytes: 4096,
        pids: 2,
        restarts: 0,
    }
}

type Row = (String, String, String);

/// The reference of the ingest figure: the columns of `site_samples` in one plain table, no
/// partitions, no indexes (what a bare `COPY` reaches on this machine).
const INGEST_FLOOR: &str = "bench_ingest_floor";

/// Samples per second through the collector's own batched write, one stream as the collector
/// writes, in batches of one cycle (one sample per site), for `seconds` per batch size; then
/// the same samples copied the same way into [`INGEST_FLOOR`] for as long, and the ratio.
async fn ingest(db: &DatabaseConnection, sites: &[BenchSite], seconds: u64) -> anyhow::Result<Vec<Row>> {
    db.execute_unprepared(&format!("CREATE TABLE IF NOT EXISTS {INGEST_FLOOR} (LIKE site_samples)")).await?;
    let mut rows = Vec::new();
    for batch in [200usize, 500, 1000, 10_000] {
        let now = Utc::now();
        metrics::ensure_partitions(db, now).await?;
        // Sites repeat when a batch is larger than the number of sites: what is measured is rows
        // per statement, which is what a cycle of that many containers writes.
        let cycle: Vec<BenchSite> = sites.iter().cycle().take(batch).copied().collect();
        let (rate, statements) = copy_for(db, &cycle, seconds, false).await?;
        let (floor, _) = copy_for(db, &cycle, seconds, true).await?;
        rows.push((
            format!("ingest, batches of {batch} samples (one COPY each, {statements} statements)"),
            format!("{rate:.0} samples/s; unindexed table {floor:.0}/s: ratio {:.2}", rate / floor),
            "≥ 250,000 samples/s".into(),
        ));
    }
    db.execute_unprepared(&format!("DROP TABLE {INGEST_FLOOR}")).await?;
    Ok(rows)
}

/// Copies `cycle`'s samples for `seconds`, into `site_samples` or into [`INGEST_FLOOR`]:
/// samples per second and statements made.
async fn copy_for(
    db: &DatabaseConnection,
    cycle: &[BenchSite],
    seconds: u64,
    floor: bool,
) -> anyhow::Result<(f64, u64)> {
    let what = if floor { "the unindexed reference table" } else { "site_samples" };
    eprintln!("==> ingest: batches of {} samples for {seconds} s into {what}", cycle.len());
    let started = Instant::now();
    let (mut written, mut statements, mut i) = (0u64, 0u64, 0i64);
    while started.elapsed() < Duration::from_secs(seconds) {
        let at = Utc::now();
        let samples: Vec<_> = cycle.iter().map(|s| sample(s, at, i)).collect();
        written += if floor {
            metrics::copy_samples(db.get_postgres_connection_pool(), INGEST_FLOOR, &samples).await?
        } else {
            metrics::insert_samples(db, &samples).await?
        };
        statements += 1;
        i += 1;
    }
    Ok((written as f64 / started.elapsed().as_secs_f64(), statements))
}

/// The 30-day chart query of one site over synthetic data for every site.
async fn query(db: &DatabaseConnection, sites: &[BenchSite]) -> anyhow::Result<Vec<Row>> {
    let now_ms = Utc::now().timestamp_millis();
    let hour_ms = 3_600_000i64;
    let last_hour = now_ms.div_euclid(hour_ms) * hour_ms;
    eprintln!("==> query: writing 30 days of 1-hour rollups, 14 days of checks and disk measurements per site");
    let started = Instant::now();
    // Every site's rows of one moment are written together, a day at a time in time order, as
    // the collector and the uptime checker write them: one site's rows of a month then sit on
    // as many heap pages as there are rows, which is what a real chart read pays for.
    let values: Vec<String> = sites.iter().map(|s| format!("('{}'::uuid, '{}'::uuid)", s.id, s.customer_id)).collect();
    let values = values.join(",");
    let day_ms = 24 * hour_ms;
    let first_day = (now_ms - 30 * day_ms).div_euclid(day_ms) * day_ms;
    let mut day = first_day;
    while day <= now_ms {
        let (from, to) = (day, (day + day_ms).min(now_ms));
        let mut statements = vec![format!(
            "INSERT INTO site_metrics_1h SELECT s.site, s.customer, b, 240, 3 + random() * 5, 10 + random() * 20, \
             12582912, 16777216, 1073741824, 1000000, 2000000, 0, 40960, 3, 0 \
             FROM generate_series({from}::bigint, {}::bigint, {hour_ms}::bigint) AS b, (VALUES {values}) AS s(site, customer) \
             WHERE b <= {last_hour} ORDER BY b",
            to - 1
        )];
        // Checks and disk measurements: the last 14 days (their retention).
        let recent = from.max(now_ms - 14 * day_ms);
        if recent < to {
            statements.push(format!(
                "INSERT INTO site_checks SELECT s.site, s.customer, t, 200, (5 + random() * 20)::bigint, true, NULL \
                 FROM generate_series({recent}::bigint, {}::bigint, 30000::bigint) AS t, (VALUES {values}) AS s(site, customer) \
                 ORDER BY t",
                to - 1
            ));
            statements.push(format!(
                "INSERT INTO site_disk_usage SELECT s.site, s.customer, t, 52428800, 120, 21474836480, true \
                 FROM generate_series({recent}::bigint, {}::bigint, 300000::bigint) AS t, (VALUES {values}) AS s(site, customer) \
                 ORDER BY t",
                to - 1
            ));
        }
        for sql in statements {
            db.execute_unprepared(&sql).await?;
        }
        day += day_ms;
    }
    // What autovacuum does on its own for these insert-only tables (m0017 asks for it every 1 %
    // of the table): the visibility map that lets the chart read answer from its index alone.
    for table in ["site_metrics_1h", "site_checks", "site_disk_usage"] {
        db.execute_unprepared(&format!("VACUUM {table}")).await?;
    }
    db.execute_unprepared("ANALYZE site_metrics_1h; ANALYZE site_checks; ANALYZE site_disk_usage").await?;
    let counts = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT (SELECT COUNT(*) FROM site_metrics_1h) AS h, (SELECT COUNT(*) FROM site_checks) AS c, \
             (SELECT COUNT(*) FROM site_disk_usage) AS d"
                .to_owned(),
        ))
        .await?
        .ok_or_else(|| anyhow!("no counts"))?;
    let (h, c, d): (i64, i64, i64) = (counts.try_get("", "h")?, counts.try_get("", "c")?, counts.try_get("", "d")?);
    eprintln!("    {h} hourly rows, {c} checks, {d} disk rows in {:.1} s", started.elapsed().as_secs_f64());

    let caller = Caller::system("berth-bench");
    let to = Utc::now();
    let from = to - chrono::Duration::days(30);
    let runs = 200usize;
    let mut times = Vec::with_capacity(runs);
    let mut points = 0usize;
    // One warm-up per site first would hide the cold read; the first runs are kept.
    for i in 0..runs {
        let site = sites[(i * 7919) % sites.len()];
        let started = Instant::now();
        let found = metrics::site_series(db, &caller, site.id, from, to, None, &metrics::Series::ALL).await?;
        times.push(started.elapsed());
        points = found.series.iter().map(|(_, p)| p.len()).sum();
        if found.resolution != metrics::Resolution::Hour {
            bail!("a 30-day range should read the 1-hour rollups, read {:?}", found.resolution);
        }
    }
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
    Ok(vec![
        (
            format!("30-day chart query, one site of {} ({runs} runs, every series: {points} points)", sites.len()),
            format!("p50 {:.1} ms, p99 {:.1} ms", ms(pct(0.50)), ms(pct(0.99))),
            "< 50 ms".into(),
        ),
        (
            "  of which: rows read per query (aggregated by the database)".into(),
            format!("{} hourly, ~40,320 checks, ~4,032 disk", 30 * 24),
            String::new(),
        ),
    ])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Builds Berth's site image (`berth images build`) when the engine does not have it.
pub(crate) async fn ensure_site_image() -> anyhow::Result<()> {
    let image = berth_runtime::images::SITE_STATIC_TAG;
    let present = Command::new("docker").args(["image", "inspect", image]).output()?.status.success();
    if !present {
        eprintln!("==> building {image}");
        let engine = berth_runtime::docker::DockerEngine::connect("unix:///var/run/docker.sock")?;
        berth_runtime::images::build_site_static(&engine, std::path::Path::new(berth_runtime::images::DEFAULT_BUSYBOX))
            .await?;
    }
    Ok(())
}

/// The bench's site containers: removed (with their anonymous volumes) on drop.
struct Containers {
    tag: String,
    ids: Vec<String>,
}

impl Containers {
    /// Starts `n` containers of the site image (built first when missing), 8 at a time.
    fn start(rt: &tokio::runtime::Runtime, tag: &str, n: usize) -> anyhow::Result<Self> {
        let image = berth_runtime::images::SITE_STATIC_TAG;
        rt.block_on(ensure_site_image())?;
        let mut me = Self { tag: tag.to_owned(), ids: Vec::with_capacity(n) };
        eprintln!("==> starting {n} site containers (berthbench-{tag}-*)");
        let started = Instant::now();
        let ids = rt.block_on(async {
            let names: Vec<String> = (0..n).map(|i| format!("berthbench-{tag}-{i}")).collect();
            let mut out = Vec::with_capacity(n);
            for chunk in names.chunks(8) {
                let runs = chunk.iter().map(|name| {
                    tokio::process::Command::new("docker")
                        .args(["run", "-d", "--name", name, "--label"])
                        .arg(format!("berth.bench={tag}"))
                        // As a site container runs (hardened, a small memory limit), without a
                        // network (the collector reads /proc/<pid>/net/dev all the same) and
                        // without the health check, whose execs would load the shared engine.
                        .args(["--network", "none", "--no-healthcheck", "--memory", "32m", "--pids-limit", "64"])
                        .args(["--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--init"])
                        .arg(image)
                        .output()
                });
                for out_of in futures_util::future::join_all(runs).await {
                    let o = out_of?;
                    if !o.status.success() {
                        return Err(anyhow!("docker run failed: {}", String::from_utf8_lossy(&o.stderr).trim()));
                    }
                    out.push(String::from_utf8_lossy(&o.stdout).trim().to_owned());
                }
            }
            anyhow::Ok(out)
        });
        match ids {
            Ok(ids) => me.ids = ids,
            Err(e) => return Err(e),
        }
        eprintln!("    started in {:.1} s", started.elapsed().as_secs_f64());
        Ok(me)
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        eprintln!("==> removing the bench's containers");
        let listed = Command::new("docker")
            .args(["ps", "-aq", "--no-trunc", "--filter"])
            .arg(format!("label=berth.bench={}", self.tag))
            .output();
        let ids: Vec<String> = match listed {
            Ok(o) => String::from_utf8_lossy(&o.stdout).lines().map(str::to_owned).collect(),
            Err(_) => self.ids.clone(),
        };
        for chunk in ids.chunks(50) {
            let _ = Command::new("docker").args(["rm", "-f", "-v"]).args(chunk).output();
        }
    }
}

/// CPU time this thread has used (`/proc/thread-self/schedstat`: nanoseconds on a CPU).
fn thread_cpu() -> anyhow::Result<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")
        .context("cannot read /proc/thread-self/schedstat (a Linux kernel with schedstats is needed)")?;
    let ns: u64 = text
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("unexpected /proc/thread-self/schedstat: {text}"))?;
    Ok(Duration::from_nanos(ns))
}

/// The collector's cost per container per cycle, on one thread that does all the work (a
/// current-thread runtime with its own database connection), so its CPU time is all of it.
fn collector(
    rt: &tokio::runtime::Runtime,
    db: &DatabaseConnection,
    url: &str,
    sites: &[BenchSite],
    containers: &Containers,
    cycles: usize,
) -> anyhow::Result<Vec<Row>> {
    let layout = CgroupLayout::detect().ok_or_else(|| anyhow!("this host has no cgroup layout Berth can read"))?;
    let n = containers.ids.len();
    // The sites own the containers, as the reconciler records them, so the job's own target
    // query finds them.
    rt.block_on(async {
        for (site, container) in sites.iter().zip(&containers.ids) {
            db.execute(Statement::from_sql_and_values(
                db.get_database_backend(),
                "UPDATE sites SET status = 'running', container_id = $1 WHERE id = $2",
                [container.clone().into(), site.id.into()],
            ))
            .await?;
        }
        anyhow::Ok(())
    })?;
    if layout.read(&containers.ids[0]).is_none() {
        bail!("the container {} has no readable cgroup on this host", containers.ids[0]);
    }
    let url = url.to_owned();
    let ids = Arc::new(containers.ids.clone());
    let handle = std::thread::spawn(move || -> anyhow::Result<(Duration, Duration, usize)> {
        let local = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        local.block_on(async {
            let mut options = sea_orm::ConnectOptions::new(url);
            options.max_connections(1).min_connections(1);
            let db = Database::connect(options).await?;
            // Warm-up: today's partition (the job makes sure of it once a day), first reads of
            // each file, the connection, the prepared statements.
            metrics::ensure_partitions(&db, Utc::now()).await?;
            let _ = store::metrics::targets(&db).await?;
            for id in ids.iter() {
                let _ = layout.read(id);
            }
            // The reads alone.
            let before = thread_cpu()?;
            let mut read = 0usize;
            for _ in 0..cycles {
                for id in ids.iter() {
                    read += usize::from(layout.read(id).is_some());
                }
            }
            let reads = thread_cpu()? - before;
            // Whole cycles as the job makes them: targets, reads with the CPU percentage from
            // the previous reading, one batched insert.
            let mut previous: HashMap<String, (i64, u64)> = HashMap::new();
            let before = thread_cpu()?;
            for _ in 0..cycles {
                let targets = store::metrics::targets(&db).await?;
                let now = Utc::now();
                let now_ms = now.timestamp_millis();
                let mut samples = Vec::with_capacity(targets.len());
                for t in &targets {
                    let Some(s) = layout.read(&t.container_id) else { continue };
                    let cpu = previous.get(&t.container_id).and_then(|&(at, usec)| {
                        let wall_us = (now_ms - at) * 1000;
                        (wall_us > 0 && s.cpu_usec >= usec).then(|| (s.cpu_usec - usec) as f64 * 100.0 / wall_us as f64)
                    });
                    previous.insert(t.container_id.clone(), (now_ms, s.cpu_usec));
                    let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                    samples.push(metrics::Sample {
                        site_id: t.site_id,
                        customer_id: t.customer_id,
                        at: now,
                        cpu_usec: int(s.cpu_usec),
                        cpu_percent: cpu,
                        memory_bytes: int(s.memory_bytes),
                        memory_limit_bytes: int(s.memory_limit_bytes),
                        net_rx_bytes: int(s.net_rx_bytes),
                        net_tx_bytes: int(s.net_tx_bytes),
                        block_read_bytes: int(s.block_read_bytes),
                        block_write_bytes: int(s.block_write_bytes),
                        pids: int(s.pids),
                        restarts: t.restarts,
                    });
                }
                metrics::insert_samples(&db, &samples).await?;
                // Cycles are 15 s apart in production; a short pause keeps timestamps distinct.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let whole = thread_cpu()? - before;
            anyhow::Ok((reads, whole, read))
        })
    });
    let (reads, whole, read) = handle.join().map_err(|_| anyhow!("the measuring thread panicked"))??;
    if read != n * cycles {
        bail!("{} of {} container reads failed (a container stopped?)", n * cycles - read, n * cycles);
    }
    let per = |total: Duration| total.as_secs_f64() * 1e6 / (n * cycles) as f64;
    let share = |us_per_container: f64, containers: usize| {
        us_per_container * containers as f64 / 1e6 / INTERVAL_SECONDS * 100.0
    };
    let (r, w) = (per(reads), per(whole));
    Ok(vec![
        (
            format!("collector, cgroup reads only ({n} containers × {cycles} cycles)"),
            format!("{r:.1} µs CPU per container per cycle"),
            String::new(),
        ),
        (
            format!("collector, whole cycle: targets query + reads + one COPY ({n} containers × {cycles} cycles)"),
            format!("{w:.1} µs CPU per container per cycle"),
            String::new(),
        ),
        (
            format!("collector share of one core at {INTERVAL_SECONDS:.0} s intervals, {n} containers (whole cycle)"),
            format!("{:.3} %", share(w, n)),
            "—".into(),
        ),
        (
            "the same for 500 containers (from the measured per-container cost)".to_owned(),
            format!("{:.3} %", share(w, 500)),
            "< 1 %".into(),
        ),
    ])
}
