//! Queue benchmark: no-op jobs per second through enqueue → run → complete at 1, 4 and 16
//! workers, and enqueue-to-start latency, on PostgreSQL.
//!
//!     BERTH_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!         cargo bench -p berth-workers --bench queue
//!
//! It creates a fresh database next to the one named (and drops it afterwards). Results and the
//! machine they were measured on are in docs/benchmarks.md.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use berth_core::jobs::{Job, Options};
use berth_migrations::{Migrator, MigratorTrait};
use berth_workers::queue::pool::{Pool, Settings};
use berth_workers::{Env, JobContext, Registry, RunJob};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};
use serde::{Deserialize, Serialize};

const JOBS: usize = 20_000;
const BATCH: usize = 500;
const LATENCY_SAMPLES: usize = 500;

#[derive(Serialize, Deserialize)]
struct BenchNoop {}

impl Job for BenchNoop {
    const NAME: &'static str = "bench.noop";
    const QUEUE: &'static str = "bench";
}

#[async_trait]
impl RunJob for BenchNoop {
    async fn run(&self, _ctx: &JobContext) -> anyhow::Result<()> {
        Ok(())
    }
}

static LATENCIES: Mutex<Vec<f64>> = Mutex::new(Vec::new());

/// Records the time from its enqueue (`sent_at`, microseconds since the epoch) to its start.
#[derive(Serialize, Deserialize)]
struct Probe {
    sent_at: i64,
}

impl Job for Probe {
    const NAME: &'static str = "bench.probe";
    const QUEUE: &'static str = "bench";
}

#[async_trait]
impl RunJob for Probe {
    async fn run(&self, _ctx: &JobContext) -> anyhow::Result<()> {
        let waited = chrono::Utc::now().timestamp_micros() - self.sent_at;
        LATENCIES.lock().unwrap_or_else(|e| e.into_inner()).push(waited as f64 / 1000.0);
        Ok(())
    }
}

async fn count(db: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    let row = db
        .query_one(Statement::from_string(db.get_database_backend(), sql.to_owned()))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no row"))?;
    Ok(row.try_get("", "n")?)
}

fn start_pool(
    db: &DatabaseConnection,
    workers: usize,
) -> (tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let settings = Settings { queues: vec![("bench".into(), workers)], ..Settings::default() };
    let registry = Registry::new().register::<BenchNoop>().register::<Probe>();
    let env = std::sync::Arc::new(Env::minimal(db.clone()).expect("worker environment"));
    let pool = Pool::new(env, registry, berth_workers::flows::FlowRegistry::new(), settings);
    let (tx, rx) = tokio::sync::watch::channel(false);
    (tx, tokio::spawn(pool.run(rx)))
}

async fn throughput(db: &DatabaseConnection, workers: usize) -> anyhow::Result<f64> {
    db.execute_unprepared("TRUNCATE jobs").await?;
    let (stop, pool) = start_pool(db, workers);
    let started = Instant::now();
    let producer = {
        let db = db.clone();
        tokio::spawn(async move {
            let batch: Vec<BenchNoop> = (0..BATCH).map(|_| BenchNoop {}).collect();
            for _ in 0..JOBS / BATCH {
                berth_core::jobs::enqueue_many(&db, &batch, Options::default()).await?;
            }
            anyhow::Ok(())
        })
    };
    loop {
        let done = count(db, "SELECT COUNT(*) AS n FROM jobs WHERE state = 'done'").await?;
        if done as usize >= JOBS {
            break;
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(600), "benchmark did not finish in 10 minutes");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    producer.await??;
    let _ = stop.send(true);
    pool.await?;
    Ok(JOBS as f64 / secs)
}

async fn latency(db: &DatabaseConnection) -> anyhow::Result<(f64, f64)> {
    db.execute_unprepared("TRUNCATE jobs").await?;
    LATENCIES.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let (stop, pool) = start_pool(db, 4);
    // Let the pool reach its idle wait (LISTEN connected) before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..LATENCY_SAMPLES {
        let probe = Probe { sent_at: chrono::Utc::now().timestamp_micros() };
        berth_core::jobs::enqueue(db, &probe).await?;
        // Spaced out, so every sample finds an idle worker (what the target is about).
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    while LATENCIES.lock().unwrap_or_else(|e| e.into_inner()).len() < LATENCY_SAMPLES {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop.send(true);
    pool.await?;
    let mut samples = LATENCIES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Ok((at(0.50), at(0.99)))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Ok(admin_url) = std::env::var("BERTH_BENCH_DATABASE_URL") else {
        eprintln!("set BERTH_BENCH_DATABASE_URL to a PostgreSQL URL whose user may create databases");
        std::process::exit(2);
    };
    let name = format!("berth_bench_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(&admin_url).await?;
    admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await?;
    let (base, _) = admin_url.rsplit_once('/').ok_or_else(|| anyhow::anyhow!("URL has no database"))?;
    let mut options = ConnectOptions::new(format!("{base}/{name}"));
    // As core::db opens production's pool: 20 connections, no ping before each checkout.
    options.max_connections(20).sqlx_logging(false).test_before_acquire(false);
    let db = Database::connect(options).await?;
    Migrator::up(&db, None).await?;

    let result = async {
        println!("Queue benchmark: {JOBS} no-op jobs, enqueued in batches of {BATCH} while the workers run");
        for workers in [1, 4, 16] {
            let rate = throughput(&db, workers).await?;
            println!("  {workers:>2} workers: {rate:>8.0} jobs/s");
        }
        let (p50, p99) = latency(&db).await?;
        println!("Enqueue-to-start latency, idle pool, {LATENCY_SAMPLES} samples: p50 {p50:.2} ms, p99 {p99:.2} ms");
        anyhow::Ok(())
    }
    .await;
    db.close().await?;
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await?;
    result
}
