//! Site metrics: raw samples, 1-minute and 1-hour rollups. Times are epoch milliseconds
//! (`BIGINT`), so bucketing is plain integer arithmetic on both databases. On PostgreSQL the raw
//! samples are partitioned by day (partitions are created ahead by the collector and the rollup
//! job, and dropped whole when they age out); SQLite gets plain tables. Counters are `BIGINT`.
//! `site_checks` holds the uptime checks made through the ingress.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The columns of a raw sample, the same on both databases.
const SAMPLE_COLUMNS: &str = "
    site_id UUID NOT NULL,
    customer_id UUID NOT NULL,
    at_ms BIGINT NOT NULL,
    cpu_usec BIGINT NOT NULL,
    cpu_percent DOUBLE PRECISION NULL,
    memory_bytes BIGINT NOT NULL,
    memory_limit_bytes BIGINT NOT NULL,
    net_rx_bytes BIGINT NOT NULL,
    net_tx_bytes BIGINT NOT NULL,
    block_read_bytes BIGINT NOT NULL,
    block_write_bytes BIGINT NOT NULL,
    pids BIGINT NOT NULL,
    restarts BIGINT NOT NULL";

/// The columns of a rollup row (`site_metrics_1m`, `site_metrics_1h`): averages and maxima of
/// levels, the increase of counters within the bucket.
const ROLLUP_COLUMNS: &str = "
    site_id UUID NOT NULL,
    customer_id UUID NOT NULL,
    bucket_ms BIGINT NOT NULL,
    samples BIGINT NOT NULL,
    cpu_percent_avg DOUBLE PRECISION NULL,
    cpu_percent_max DOUBLE PRECISION NULL,
    memory_bytes_avg BIGINT NOT NULL,
    memory_bytes_max BIGINT NOT NULL,
    memory_limit_bytes BIGINT NOT NULL,
    net_rx_bytes BIGINT NOT NULL,
    net_tx_bytes BIGINT NOT NULL,
    block_read_bytes BIGINT NOT NULL,
    block_write_bytes BIGINT NOT NULL,
    pids_max BIGINT NOT NULL,
    restarts_max BIGINT NOT NULL,
    PRIMARY KEY (site_id, bucket_ms)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let samples = match db.get_database_backend() {
            DbBackend::Postgres => format!("CREATE TABLE site_samples ({SAMPLE_COLUMNS}) PARTITION BY RANGE (at_ms)"),
            _ => format!("CREATE TABLE site_samples ({SAMPLE_COLUMNS})"),
        };
        db.execute_unprepared(&samples).await?;
        // One site over a time range: the charts' and the API's query.
        db.execute_unprepared("CREATE INDEX site_samples_site_at ON site_samples (site_id, at_ms)").await?;
        db.execute_unprepared("CREATE INDEX site_samples_at ON site_samples (at_ms)").await?;
        for table in ["site_metrics_1m", "site_metrics_1h"] {
            db.execute_unprepared(&format!("CREATE TABLE {table} ({ROLLUP_COLUMNS})")).await?;
            db.execute_unprepared(&format!("CREATE INDEX {table}_bucket ON {table} (bucket_ms)")).await?;
        }
        // Uptime checks through the ingress: what a visitor got, and how fast.
        db.execute_unprepared(
            "CREATE TABLE site_checks (
                site_id UUID NOT NULL,
                customer_id UUID NOT NULL,
                at_ms BIGINT NOT NULL,
                status_code INTEGER NULL,
                latency_ms BIGINT NOT NULL,
                up BOOLEAN NOT NULL,
                error VARCHAR(300) NULL)",
        )
        .await?;
        db.execute_unprepared("CREATE INDEX site_checks_site_at ON site_checks (site_id, at_ms)").await?;
        db.execute_unprepared("CREATE INDEX site_checks_at ON site_checks (at_ms)").await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for table in ["site_checks", "site_metrics_1h", "site_metrics_1m", "site_samples"] {
            db.execute_unprepared(&format!("DROP TABLE IF EXISTS {table}")).await?;
        }
        Ok(())
    }
}
