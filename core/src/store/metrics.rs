//! Site metrics in the database: raw samples written in one statement per collection cycle,
//! rolled up to 1-minute and 1-hour buckets, pruned by age, and read back as series for one
//! site (tenant-scoped like every other read). Times are epoch milliseconds.
//!
//! Rollups keep, per bucket, the average and maximum of levels (CPU %, memory) and the
//! increase of cumulative counters (network and block bytes: last minus first sample of the
//! bucket, so a container restart inside a bucket undercounts it rather than inventing traffic).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use sea_orm::sea_query::{Alias, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QuerySelect, Statement,
};
use uuid::Uuid;

use crate::access::{self, Caller};
use crate::config::MetricsConfig;
use crate::entities::sites;
use crate::error::{Error, Result};
use crate::types::SiteStatus;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// One reading of one site's container.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub site_id: Uuid,
    pub customer_id: Uuid,
    pub at: DateTime<Utc>,
    pub cpu_usec: i64,
    /// Over the interval since the previous reading in this process; `None` on the first.
    pub cpu_percent: Option<f64>,
    pub memory_bytes: i64,
    pub memory_limit_bytes: i64,
    pub net_rx_bytes: i64,
    pub net_tx_bytes: i64,
    pub block_read_bytes: i64,
    pub block_write_bytes: i64,
    pub pids: i64,
    pub restarts: i64,
}

/// A running site the collector reads: its container and what labels its series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub site_id: Uuid,
    pub customer_id: Uuid,
    pub container_id: String,
    pub restarts: i64,
    /// The site's first domain, or its name when it has none (the `domain` label).
    pub domain: String,
    /// Whether `domain` is a real domain the ingress routes (uptime checks need one).
    pub routed: bool,
}

/// The sites with a running container: what both the sample and the disk collectors measure.
async fn running_sites(db: &impl ConnectionTrait) -> Result<Vec<sites::Model>> {
    Ok(sites::Entity::find()
        .filter(sites::Column::Status.eq(SiteStatus::Running))
        .filter(sites::Column::ContainerId.is_not_null())
        .all(db)
        .await?)
}

/// Every site that should be running and has a container: what one collection cycle reads.
pub async fn targets(db: &impl ConnectionTrait) -> Result<Vec<Target>> {
    let rows = running_sites(db).await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut domains = super::sites::domains_of(db, Some(&ids)).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let first = domains.remove(&r.id).and_then(|d| d.into_iter().next());
            Some(Target {
                site_id: r.id,
                customer_id: r.customer_id,
                container_id: r.container_id?,
                restarts: i64::from(r.restart_count),
                routed: first.is_some(),
                domain: first.unwrap_or_else(|| r.name.clone()),
            })
        })
        .collect())
}

/// The columns of `site_samples` a cycle writes, in the order [`sample_row`] renders them.
const SAMPLE_COLUMNS: [&str; 13] = [
    "site_id",
    "customer_id",
    "at_ms",
    "cpu_usec",
    "cpu_percent",
    "memory_bytes",
    "memory_limit_bytes",
    "net_rx_bytes",
    "net_tx_bytes",
    "block_read_bytes",
    "block_write_bytes",
    "pids",
    "restarts",
];

/// Writes a cycle's samples in one statement, whatever the number of sites: on PostgreSQL one
/// `COPY ... FROM STDIN` (the fastest bulk path it has: no bind parameters to encode and no
/// statement of thousands of placeholders to parse and plan), on SQLite one multi-row `INSERT`.
pub async fn insert_samples(db: &DatabaseConnection, samples: &[Sample]) -> Result<u64> {
    if samples.is_empty() {
        return Ok(0);
    }
    if db.get_database_backend() == DbBackend::Postgres {
        return copy_samples(db.get_postgres_connection_pool(), "site_samples", samples).await;
    }
    let rows = samples.iter().map(|s| {
        vec![
            s.site_id.into(),
            s.customer_id.into(),
            s.at.timestamp_millis().into(),
            s.cpu_usec.into(),
            s.cpu_percent.into(),
            s.memory_bytes.into(),
            s.memory_limit_bytes.into(),
            s.net_rx_bytes.into(),
            s.net_tx_bytes.into(),
            s.block_read_bytes.into(),
            s.block_write_bytes.into(),
            s.pids.into(),
            s.restarts.into(),
        ]
    });
    insert_rows(db, "site_samples", &SAMPLE_COLUMNS, rows).await
}

/// One `COPY` of the samples into `table` in PostgreSQL's text format, sent as one buffer.
/// Berth copies into `site_samples`; berth-bench also into a table of the same columns without
/// indexes or partitions, the floor its ingest figure is compared with.
pub async fn copy_samples(pool: &sqlx::PgPool, table: &'static str, samples: &[Sample]) -> Result<u64> {
    use sqlx::postgres::PgPoolCopyExt;
    let mut data = String::with_capacity(samples.len() * 160);
    for sample in samples {
        sample_row(&mut data, sample);
    }
    let statement = format!("COPY {table} ({}) FROM STDIN", SAMPLE_COLUMNS.join(", "));
    let copy_error = |e: sqlx::Error| Error::Internal(anyhow::anyhow!("copying samples into {table}: {e}"));
    let mut copy = pool.copy_in_raw(&statement).await.map_err(copy_error)?;
    if let Err(err) = copy.send(data.as_bytes()).await {
        // Leave the connection usable for the pool; the send's error is the one to report.
        let _ = copy.abort("the samples could not be sent").await;
        return Err(copy_error(err));
    }
    copy.finish().await.map_err(copy_error)
}

/// One sample as a line of `COPY`'s text format: tab-separated, `\N` for NULL. Only numbers and
/// UUIDs, so nothing needs escaping.
fn sample_row(out: &mut String, s: &Sample) {
    use std::fmt::Write as _;
    // Writing into a `String` cannot fail, hence the ignored results.
    // A percentage that is not a finite number is no reading at all.
    let cpu = s.cpu_percent.filter(|c| c.is_finite());
    let _ = write!(out, "{}\t{}\t{}\t{}\t", s.site_id, s.customer_id, s.at.timestamp_millis(), s.cpu_usec);
    match cpu {
        Some(c) => {
            let _ = write!(out, "{c}\t");
        }
        None => out.push_str("\\N\t"),
    }
    let _ = writeln!(
        out,
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        s.memory_bytes,
        s.memory_limit_bytes,
        s.net_rx_bytes,
        s.net_tx_bytes,
        s.block_read_bytes,
        s.block_write_bytes,
        s.pids,
        s.restarts
    );
}

/// One multi-row `INSERT` of `rows` into `table`; nothing is sent for no rows.
async fn insert_rows(
    db: &impl ConnectionTrait,
    table: &str,
    columns: &[&str],
    rows: impl Iterator<Item = Vec<sea_orm::Value>>,
) -> Result<u64> {
    let mut q = Query::insert();
    q.into_table(Alias::new(table)).columns(columns.iter().map(|c| Alias::new(*c)));
    let mut any = false;
    for row in rows {
        any = true;
        q.values(row.into_iter().map(Into::into))
            .map_err(|e| Error::Internal(anyhow::anyhow!("building the insert into {table}: {e}")))?;
    }
    if !any {
        return Ok(0);
    }
    let backend = db.get_database_backend();
    Ok(db.execute(backend.build(&q)).await?.rows_affected())
}

/// One measurement of a site volume's disk use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskUsage {
    pub site_id: Uuid,
    pub customer_id: Uuid,
    pub at: DateTime<Utc>,
    pub bytes: i64,
    pub files: i64,
    /// The plan's `storage_mb` in bytes; 0 when the plan has none.
    pub limit_bytes: i64,
    /// False when the walk stopped at its file cap (`bytes` then undercounts).
    pub complete: bool,
}

/// A running site whose volume is measured, with its plan's storage quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskTarget {
    pub site_id: Uuid,
    pub customer_id: Uuid,
    /// The plan's `storage_mb` in bytes.
    pub limit_bytes: i64,
}

/// Every running site with its plan's storage quota: what one disk round measures.
pub async fn disk_targets(db: &impl ConnectionTrait) -> Result<Vec<DiskTarget>> {
    use crate::entities::{customers, plans};
    let sites = running_sites(db).await?;
    // Only the customers that own a running site, and only the two columns needed.
    let owners: Vec<Uuid> = sites.iter().map(|s| s.customer_id).collect::<HashSet<_>>().into_iter().collect();
    let plan_of: HashMap<Uuid, String> = customers::Entity::find()
        .select_only()
        .column(customers::Column::Id)
        .column(customers::Column::PlanId)
        .filter(customers::Column::Id.is_in(owners))
        .into_tuple::<(Uuid, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    // Plans are a handful of rows.
    let storage: HashMap<String, i64> =
        plans::Entity::find().all(db).await?.into_iter().map(|p| (p.id, i64::from(p.storage_mb))).collect();
    Ok(sites
        .into_iter()
        .map(|s| {
            let mb = plan_of.get(&s.customer_id).and_then(|p| storage.get(p)).copied().unwrap_or(0);
            DiskTarget { site_id: s.id, customer_id: s.customer_id, limit_bytes: mb.max(0) * 1024 * 1024 }
        })
        .collect())
}

/// Writes a round of disk measurements in one statement.
pub async fn insert_disk_usage(db: &impl ConnectionTrait, rows: &[DiskUsage]) -> Result<u64> {
    let columns = ["site_id", "customer_id", "at_ms", "bytes", "files", "limit_bytes", "complete"];
    let values = rows.iter().map(|d| {
        vec![
            d.site_id.into(),
            d.customer_id.into(),
            d.at.timestamp_millis().into(),
            d.bytes.into(),
            d.files.into(),
            d.limit_bytes.into(),
            d.complete.into(),
        ]
    });
    insert_rows(db, "site_disk_usage", &columns, values).await
}

/// One uptime check of a site through the ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub site_id: Uuid,
    pub customer_id: Uuid,
    pub at: DateTime<Utc>,
    /// The status the ingress answered; `None` when nothing answered in time.
    pub status_code: Option<i32>,
    pub latency_ms: i64,
    /// A visitor got an answer that was not a server error.
    pub up: bool,
    pub error: Option<String>,
}

/// Writes a round of uptime checks in one statement.
pub async fn insert_checks(db: &impl ConnectionTrait, checks: &[Check]) -> Result<u64> {
    let columns = ["site_id", "customer_id", "at_ms", "status_code", "latency_ms", "up", "error"];
    let rows = checks.iter().map(|c| {
        let error: Option<String> = c.error.as_ref().map(|e| e.chars().take(300).collect());
        vec![
            c.site_id.into(),
            c.customer_id.into(),
            c.at.timestamp_millis().into(),
            c.status_code.into(),
            c.latency_ms.into(),
            c.up.into(),
            error.into(),
        ]
    });
    insert_rows(db, "site_checks", &columns, rows).await
}

/// The name of the raw-samples partition holding the UTC day that starts at `day_ms`.
fn partition_name(day_ms: i64) -> String {
    let day = Utc.timestamp_millis_opt(day_ms).single().unwrap_or_default();
    format!("site_samples_{}", day.format("%Y%m%d"))
}

/// On PostgreSQL, makes sure the raw-samples partitions for the day of `now` and the next day
/// exist (idempotent); nothing to do on SQLite.
pub async fn ensure_partitions(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<()> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let today = now.timestamp_millis().div_euclid(DAY_MS) * DAY_MS;
    for day in [today, today + DAY_MS] {
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF site_samples FOR VALUES FROM ({day}) TO ({})",
            partition_name(day),
            day + DAY_MS
        );
        db.execute_unprepared(&sql).await?;
    }
    Ok(())
}

/// Rolls complete minutes of raw samples up into `site_metrics_1m`, and complete hours of
/// those into `site_metrics_1h`. Idempotent: recent buckets are recomputed from their sources,
/// so running it twice, late or after a crash gives the same rows.
pub async fn rollup(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<()> {
    let now_ms = now.timestamp_millis();
    let minute_end = now_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
    // The last hour of complete minutes, so a late or missed run catches up.
    let minute_start = minute_end - HOUR_MS;
    let minutes = format!(
        "INSERT INTO site_metrics_1m (site_id, customer_id, bucket_ms, samples, cpu_percent_avg, cpu_percent_max, \
           memory_bytes_avg, memory_bytes_max, memory_limit_bytes, net_rx_bytes, net_tx_bytes, block_read_bytes, \
           block_write_bytes, pids_max, restarts_max) \
         SELECT site_id, customer_id, (at_ms / {MINUTE_MS}) * {MINUTE_MS}, COUNT(*), AVG(cpu_percent), MAX(cpu_percent), \
           CAST(AVG(memory_bytes) AS BIGINT), MAX(memory_bytes), MAX(memory_limit_bytes), \
           MAX(net_rx_bytes) - MIN(net_rx_bytes), MAX(net_tx_bytes) - MIN(net_tx_bytes), \
           MAX(block_read_bytes) - MIN(block_read_bytes), MAX(block_write_bytes) - MIN(block_write_bytes), \
           MAX(pids), MAX(restarts) \
         FROM site_samples WHERE at_ms >= {minute_start} AND at_ms < {minute_end} \
         GROUP BY site_id, customer_id, (at_ms / {MINUTE_MS}) * {MINUTE_MS} \
         {upsert}",
        upsert = upsert()
    );
    db.execute_unprepared(&minutes).await?;
    let hour_end = now_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let hour_start = hour_end - 2 * HOUR_MS;
    let hours = format!(
        "INSERT INTO site_metrics_1h (site_id, customer_id, bucket_ms, samples, cpu_percent_avg, cpu_percent_max, \
           memory_bytes_avg, memory_bytes_max, memory_limit_bytes, net_rx_bytes, net_tx_bytes, block_read_bytes, \
           block_write_bytes, pids_max, restarts_max) \
         SELECT site_id, customer_id, (bucket_ms / {HOUR_MS}) * {HOUR_MS}, SUM(samples), \
           SUM(cpu_percent_avg * samples) / NULLIF(SUM(CASE WHEN cpu_percent_avg IS NULL THEN 0 ELSE samples END), 0), \
           MAX(cpu_percent_max), CAST(SUM(memory_bytes_avg * samples) / SUM(samples) AS BIGINT), MAX(memory_bytes_max), \
           MAX(memory_limit_bytes), SUM(net_rx_bytes), SUM(net_tx_bytes), SUM(block_read_bytes), \
           SUM(block_write_bytes), MAX(pids_max), MAX(restarts_max) \
         FROM site_metrics_1m WHERE bucket_ms >= {hour_start} AND bucket_ms < {hour_end} \
         GROUP BY site_id, customer_id, (bucket_ms / {HOUR_MS}) * {HOUR_MS} \
         {upsert}",
        upsert = upsert()
    );
    db.execute_unprepared(&hours).await?;
    Ok(())
}

/// The conflict clause of the rollups: a recomputed bucket replaces the stored one.
fn upsert() -> &'static str {
    "ON CONFLICT (site_id, bucket_ms) DO UPDATE SET samples = excluded.samples, \
     cpu_percent_avg = excluded.cpu_percent_avg, cpu_percent_max = excluded.cpu_percent_max, \
     memory_bytes_avg = excluded.memory_bytes_avg, memory_bytes_max = excluded.memory_bytes_max, \
     memory_limit_bytes = excluded.memory_limit_bytes, net_rx_bytes = excluded.net_rx_bytes, \
     net_tx_bytes = excluded.net_tx_bytes, block_read_bytes = excluded.block_read_bytes, \
     block_write_bytes = excluded.block_write_bytes, pids_max = excluded.pids_max, \
     restarts_max = excluded.restarts_max"
}

/// Drops what is older than the configured retention: raw samples (on PostgreSQL whole days of
/// partitions, never the day still inside the window), 1-minute and 1-hour rollups.
pub async fn prune(db: &impl ConnectionTrait, now: DateTime<Utc>, config: &MetricsConfig) -> Result<()> {
    let now_ms = now.timestamp_millis();
    let raw_cutoff = now_ms - i64::from(config.raw_hours) * HOUR_MS;
    if db.get_database_backend() == DbBackend::Postgres {
        let rows = db
            .query_all(Statement::from_string(
                DbBackend::Postgres,
                "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                 JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'site_samples'",
            ))
            .await?;
        for row in rows {
            let name: String = row.try_get("", "name")?;
            let Some(day_end) = partition_day(&name).map(|d| d + DAY_MS) else { continue };
            if day_end <= raw_cutoff {
                db.execute_unprepared(&format!("DROP TABLE IF EXISTS {name}")).await?;
            }
        }
    } else {
        db.execute_unprepared(&format!("DELETE FROM site_samples WHERE at_ms < {raw_cutoff}")).await?;
    }
    let minute_cutoff = now_ms - i64::from(config.minute_days) * DAY_MS;
    db.execute_unprepared(&format!("DELETE FROM site_metrics_1m WHERE bucket_ms < {minute_cutoff}")).await?;
    // Uptime checks and disk measurements are kept as long as the 1-minute buckets.
    db.execute_unprepared(&format!("DELETE FROM site_checks WHERE at_ms < {minute_cutoff}")).await?;
    db.execute_unprepared(&format!("DELETE FROM site_disk_usage WHERE at_ms < {minute_cutoff}")).await?;
    let hour_cutoff = now_ms - i64::from(config.hour_days) * DAY_MS;
    db.execute_unprepared(&format!("DELETE FROM site_metrics_1h WHERE bucket_ms < {hour_cutoff}")).await?;
    Ok(())
}

/// The start (epoch ms) of the day a partition named by [`partition_name`] holds.
fn partition_day(name: &str) -> Option<i64> {
    let date = chrono::NaiveDate::parse_from_str(name.strip_prefix("site_samples_")?, "%Y%m%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// A series the API can return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Series {
    CpuPercent,
    MemoryBytes,
    MemoryLimitBytes,
    NetworkRxBytesPerSecond,
    NetworkTxBytesPerSecond,
    BlockReadBytesPerSecond,
    BlockWriteBytesPerSecond,
    Pids,
    /// 1 when an uptime check got an answer that was not a server error, 0 otherwise
    /// (averaged per bucket: the share of checks that passed).
    Up,
    /// How long the uptime check took, in milliseconds.
    ResponseMs,
    /// The site volume's measured use.
    DiskBytes,
    /// The plan's storage quota (`storage_mb`) at the time of each measurement.
    DiskLimitBytes,
}

impl Series {
    pub const ALL: [Series; 12] = [
        Self::CpuPercent,
        Self::MemoryBytes,
        Self::MemoryLimitBytes,
        Self::NetworkRxBytesPerSecond,
        Self::NetworkTxBytesPerSecond,
        Self::BlockReadBytesPerSecond,
        Self::BlockWriteBytesPerSecond,
        Self::Pids,
        Self::Up,
        Self::ResponseMs,
        Self::DiskBytes,
        Self::DiskLimitBytes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::CpuPercent => "cpu_percent",
            Self::MemoryBytes => "memory_bytes",
            Self::MemoryLimitBytes => "memory_limit_bytes",
            Self::NetworkRxBytesPerSecond => "network_rx_bytes_per_second",
            Self::NetworkTxBytesPerSecond => "network_tx_bytes_per_second",
            Self::BlockReadBytesPerSecond => "block_read_bytes_per_second",
            Self::BlockWriteBytesPerSecond => "block_write_bytes_per_second",
            Self::Pids => "pids",
            Self::Up => "up",
            Self::ResponseMs => "response_ms",
            Self::DiskBytes => "disk_bytes",
            Self::DiskLimitBytes => "disk_limit_bytes",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Which table a range is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Raw,
    Minute,
    Hour,
}

impl Resolution {
    /// Raw samples up to 6 hours, 1-minute buckets up to 8 days, 1-hour buckets beyond.
    pub fn for_span(span: Duration) -> Self {
        if span <= Duration::hours(6) {
            Self::Raw
        } else if span <= Duration::days(8) {
            Self::Minute
        } else {
            Self::Hour
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Minute => "1m",
            Self::Hour => "1h",
        }
    }
}

/// One site's series over a range: `(epoch ms, value)` points per series, oldest first.
#[derive(Debug, Clone)]
pub struct SiteSeries {
    pub resolution: Resolution,
    /// The share of uptime checks in the range that passed, in percent; `None` without checks.
    pub uptime_percent: Option<f64>,
    pub series: Vec<(Series, Vec<(i64, f64)>)>,
}

/// Whether the caller may read the site's metrics: another tenant's site is not found. (The
/// API checks it before answering from its cache.)
pub async fn check_site(db: &impl ConnectionTrait, caller: &Caller, site_id: Uuid) -> Result<()> {
    access::sites(caller).filter(sites::Column::Id.eq(site_id)).one(db).await?.ok_or(Error::NotFound("site"))?;
    Ok(())
}

/// The series of one site between `from` and `to`, at the resolution the span calls for,
/// averaged into `step`-second buckets when a step is given. Scoped: another tenant's site is
/// not found.
pub async fn site_series(
    db: &impl ConnectionTrait,
    caller: &Caller,
    site_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step_seconds: Option<u32>,
    wanted: &[Series],
) -> Result<SiteSeries> {
    access::sites(caller).filter(sites::Column::Id.eq(site_id)).one(db).await?.ok_or(Error::NotFound("site"))?;
    let resolution = Resolution::for_span(to - from);
    let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis());
    let mut points: HashMap<Series, Vec<(i64, f64)>> = HashMap::new();
    let backend = db.get_database_backend();
    match resolution {
        Resolution::Raw => {
            let sql = "SELECT at_ms, cpu_percent, memory_bytes, memory_limit_bytes, net_rx_bytes, net_tx_bytes, \
                       block_read_bytes, block_write_bytes, pids FROM site_samples \
                       WHERE site_id = $1 AND at_ms >= $2 AND at_ms < $3 ORDER BY at_ms";
            let rows = db
                .query_all(Statement::from_sql_and_values(
                    backend,
                    placeholders(backend, sql),
                    [site_id.into(), from_ms.into(), to_ms.into()],
                ))
                .await?;
            let mut previous: Option<(i64, [i64; 4])> = None;
            for row in rows {
                let at: i64 = row.try_get("", "at_ms")?;
                let counters = [
                    row.try_get::<i64>("", "net_rx_bytes")?,
                    row.try_get::<i64>("", "net_tx_bytes")?,
                    row.try_get::<i64>("", "block_read_bytes")?,
                    row.try_get::<i64>("", "block_write_bytes")?,
                ];
                if let Some(cpu) = row.try_get::<Option<f64>>("", "cpu_percent")? {
                    points.entry(Series::CpuPercent).or_default().push((at, cpu));
                }
                points
                    .entry(Series::MemoryBytes)
                    .or_default()
                    .push((at, row.try_get::<i64>("", "memory_bytes")? as f64));
                points
                    .entry(Series::MemoryLimitBytes)
                    .or_default()
                    .push((at, row.try_get::<i64>("", "memory_limit_bytes")? as f64));
                points.entry(Series::Pids).or_default().push((at, row.try_get::<i64>("", "pids")? as f64));
                if let Some((then, before)) = previous {
                    let seconds = (at - then) as f64 / 1000.0;
                    let rates = [
                        Series::NetworkRxBytesPerSecond,
                        Series::NetworkTxBytesPerSecond,
                        Series::BlockReadBytesPerSecond,
                        Series::BlockWriteBytesPerSecond,
                    ];
                    for (i, series) in rates.into_iter().enumerate() {
                        // A counter that went down was reset (a new container): no rate there.
                        if seconds > 0.0 && counters[i] >= before[i] {
                            points.entry(series).or_default().push((at, (counters[i] - before[i]) as f64 / seconds));
                        }
                    }
                }
                previous = Some((at, counters));
            }
        }
        Resolution::Minute | Resolution::Hour => {
            let (table, bucket) =
                if resolution == Resolution::Minute { ("site_metrics_1m", 60.0) } else { ("site_metrics_1h", 3600.0) };
            let sql = format!(
                "SELECT bucket_ms, cpu_percent_avg, memory_bytes_avg, memory_limit_bytes, net_rx_bytes, net_tx_bytes, \
                 block_read_bytes, block_write_bytes, pids_max FROM {table} \
                 WHERE site_id = $1 AND bucket_ms >= $2 AND bucket_ms < $3 ORDER BY bucket_ms"
            );
            let rows = db
                .query_all(Statement::from_sql_and_values(
                    backend,
                    placeholders(backend, &sql),
                    [site_id.into(), from_ms.into(), to_ms.into()],
                ))
                .await?;
            for row in rows {
                let at: i64 = row.try_get("", "bucket_ms")?;
                if let Some(cpu) = row.try_get::<Option<f64>>("", "cpu_percent_avg")? {
                    points.entry(Series::CpuPercent).or_default().push((at, cpu));
                }
                let level = |c: &str| row.try_get::<i64>("", c).map(|v| v as f64);
                points.entry(Series::MemoryBytes).or_default().push((at, level("memory_bytes_avg")?));
                points.entry(Series::MemoryLimitBytes).or_default().push((at, level("memory_limit_bytes")?));
                points.entry(Series::Pids).or_default().push((at, level("pids_max")?));
                points.entry(Series::NetworkRxBytesPerSecond).or_default().push((at, level("net_rx_bytes")? / bucket));
                points.entry(Series::NetworkTxBytesPerSecond).or_default().push((at, level("net_tx_bytes")? / bucket));
                points
                    .entry(Series::BlockReadBytesPerSecond)
                    .or_default()
                    .push((at, level("block_read_bytes")? / bucket));
                points
                    .entry(Series::BlockWriteBytesPerSecond)
                    .or_default()
                    .push((at, level("block_write_bytes")? / bucket));
            }
        }
    }
    let bucket_ms = match resolution {
        Resolution::Raw => None,
        Resolution::Minute => Some(MINUTE_MS),
        Resolution::Hour => Some(HOUR_MS),
    };
    // Uptime checks (every 30 s) and disk measurements (every few minutes) are kept raw. Over a
    // minute or hour range they are averaged per bucket in the database, so a 30-day chart reads
    // a few hundred rows instead of every check of the range.
    let window = [site_id.into(), from_ms.into(), to_ms.into()];
    let check_rows = match bucket_ms {
        None => {
            let sql = "SELECT at_ms, CAST(CASE WHEN up THEN 1 ELSE 0 END AS DOUBLE PRECISION) AS up, \
                       CAST(latency_ms AS DOUBLE PRECISION) AS latency, CAST(1 AS BIGINT) AS n FROM site_checks WHERE site_id = $1 AND at_ms >= $2 AND at_ms < $3 ORDER BY at_ms";
            db.query_all(Statement::from_sql_and_values(backend, placeholders(backend, sql), window.clone())).await?
        }
        Some(ms) => {
            let sql = format!(
                "SELECT (at_ms / {ms}) * {ms} AS at_ms, \
                 CAST(AVG(CASE WHEN up THEN 1.0 ELSE 0.0 END) AS DOUBLE PRECISION) AS up, \
                 CAST(AVG(latency_ms) AS DOUBLE PRECISION) AS latency, COUNT(*) AS n \
                 FROM site_checks WHERE site_id = $1 AND at_ms >= $2 AND at_ms < $3 GROUP BY 1 ORDER BY 1"
            );
            db.query_all(Statement::from_sql_and_values(backend, placeholders(backend, &sql), window.clone())).await?
        }
    };
    let (mut up, mut response) = (Vec::with_capacity(check_rows.len()), Vec::with_capacity(check_rows.len()));
    let (mut up_sum, mut checks) = (0.0, 0i64);
    for row in check_rows {
        let at: i64 = row.try_get("", "at_ms")?;
        let share: f64 = row.try_get("", "up")?;
        let n: i64 = row.try_get::<i64>("", "n")?;
        up_sum += share * n as f64;
        checks += n;
        up.push((at, share));
        response.push((at, row.try_get::<f64>("", "latency")?));
    }
    let uptime_percent = (checks > 0).then(|| up_sum * 100.0 / checks as f64);
    let disk_sql = match bucket_ms {
        None => "SELECT at_ms, CAST(bytes AS DOUBLE PRECISION) AS bytes, CAST(limit_bytes AS DOUBLE PRECISION) AS limit_bytes \
                 FROM site_disk_usage WHERE site_id = $1 AND at_ms >= $2 AND at_ms < $3 ORDER BY at_ms"
            .to_owned(),
        Some(ms) => format!(
            "SELECT (at_ms / {ms}) * {ms} AS at_ms, CAST(AVG(bytes) AS DOUBLE PRECISION) AS bytes, \
             CAST(AVG(limit_bytes) AS DOUBLE PRECISION) AS limit_bytes \
             FROM site_disk_usage WHERE site_id = $1 AND at_ms >= $2 AND at_ms < $3 GROUP BY 1 ORDER BY 1"
        ),
    };
    let rows = db.query_all(Statement::from_sql_and_values(backend, placeholders(backend, &disk_sql), window)).await?;
    let (mut disk, mut disk_limit) = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
    for row in rows {
        let at: i64 = row.try_get("", "at_ms")?;
        disk.push((at, row.try_get::<f64>("", "bytes")?));
        disk_limit.push((at, row.try_get::<f64>("", "limit_bytes")?));
    }
    for (series, values) in [
        (Series::Up, up),
        (Series::ResponseMs, response),
        (Series::DiskBytes, disk),
        (Series::DiskLimitBytes, disk_limit),
    ] {
        points.insert(series, values);
    }
    let series = wanted
        .iter()
        .map(|s| {
            let values = points.remove(s).unwrap_or_default();
            let values = match step_seconds {
                Some(step) => downsample(&values, i64::from(step) * 1000),
                None => values,
            };
            (*s, values)
        })
        .collect();
    Ok(SiteSeries { resolution, uptime_percent, series })
}

/// Averages points into buckets of `step_ms`, each stamped with its start.
pub fn downsample(points: &[(i64, f64)], step_ms: i64) -> Vec<(i64, f64)> {
    let mut out: Vec<(i64, f64, u32)> = Vec::new();
    for &(t, v) in points {
        let bucket = t.div_euclid(step_ms.max(1)) * step_ms.max(1);
        match out.last_mut() {
            Some((b, sum, n)) if *b == bucket => {
                *sum += v;
                *n += 1;
            }
            _ => out.push((bucket, v, 1)),
        }
    }
    out.into_iter().map(|(b, sum, n)| (b, sum / f64::from(n))).collect()
}

/// `$n` placeholders for PostgreSQL, `?` for SQLite.
pub(crate) fn placeholders(backend: DbBackend, sql: &str) -> String {
    if backend == DbBackend::Postgres {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_named_by_their_utc_day() {
        let day = Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).single().expect("date").timestamp_millis();
        assert_eq!(partition_name(day), "site_samples_20261202");
        assert_eq!(partition_day("site_samples_20261202"), Some(day));
        assert_eq!(partition_day("site_samples"), None);
    }

    #[test]
    fn samples_render_as_copy_text_lines() {
        let mut sample = Sample {
            site_id: Uuid::nil(),
            customer_id: Uuid::max(),
            at: Utc.timestamp_millis_opt(1_700_000_000_123).single().expect("time"),
            cpu_usec: 5,
            cpu_percent: Some(12.5),
            memory_bytes: 6,
            memory_limit_bytes: 7,
            net_rx_bytes: 8,
            net_tx_bytes: 9,
            block_read_bytes: 10,
            block_write_bytes: 11,
            pids: 12,
            restarts: 13,
        };
        let mut out = String::new();
        sample_row(&mut out, &sample);
        sample.cpu_percent = Some(f64::NAN);
        sample_row(&mut out, &sample);
        sample.cpu_percent = Some(1e-7);
        sample_row(&mut out, &sample);
        let ids = "00000000-0000-0000-0000-000000000000\tffffffff-ffff-ffff-ffff-ffffffffffff\t1700000000123\t5";
        let rest = "6\t7\t8\t9\t10\t11\t12\t13";
        assert_eq!(
            out,
            format!("{ids}\t12.5\t{rest}\n{ids}\t\\N\t{rest}\n{ids}\t0.0000001\t{rest}\n"),
            "13 tab-separated fields, \\N for a reading that is not a number, no exponents"
        );
        assert_eq!(out.lines().next().map(|l| l.split('\t').count()), Some(SAMPLE_COLUMNS.len()));
    }

    #[test]
    fn spans_pick_resolutions_and_steps_average() {
        assert_eq!(Resolution::for_span(Duration::hours(1)), Resolution::Raw);
        assert_eq!(Resolution::for_span(Duration::days(7)), Resolution::Minute);
        assert_eq!(Resolution::for_span(Duration::days(30)), Resolution::Hour);
        assert_eq!(downsample(&[(0, 1.0), (500, 3.0), (1000, 5.0)], 1000), vec![(0, 2.0), (1000, 5.0)]);
        assert_eq!(placeholders(DbBackend::Sqlite, "a = $1 AND b < $12"), "a = ? AND b < ?");
    }
}
