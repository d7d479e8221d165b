//! Monitoring, second part: the global rules for restarts, certificate expiry and disk use,
//! the severity an alert last notified (so a warning → critical escalation pages once), and the
//! measured disk use of each site's volume. Expand only: a new column the running binary
//! ignores, a new table, new rows (seeded with fixed ids, so a re-run or a second replica adds
//! nothing).

use sea_orm::prelude::Uuid;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AlertRules {
    Table,
    Id,
    Metric,
    Scope,
    Warning,
    Critical,
    ForSeconds,
    Enabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Alerts {
    Table,
    NotifiedSeverity,
}

/// (fixed id, metric, warning, critical, for seconds): container restarts within the last
/// 10 minutes, days until the site's certificate expires (lower is worse), and the volume's
/// use in percent of the plan's `storage_mb`.
const RULES: [(&str, &str, f64, f64, i32); 3] = [
    ("01000000-0000-7000-8000-00000000a004", "restarts", 1.0, 3.0, 0),
    ("01000000-0000-7000-8000-00000000a005", "certificate", 14.0, 3.0, 0),
    ("01000000-0000-7000-8000-00000000a006", "disk", 80.0, 90.0, 0),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alerts::Table)
                    .add_column(ColumnDef::new(Alerts::NotifiedSeverity).string_len(16).null())
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        // One row per site and measurement; written every `BERTH_METRICS_DISK_INTERVAL_SECONDS`
        // in one statement, read as the `disk_bytes` series, pruned with the uptime checks.
        db.execute_unprepared(
            "CREATE TABLE site_disk_usage (
                site_id UUID NOT NULL,
                customer_id UUID NOT NULL,
                at_ms BIGINT NOT NULL,
                bytes BIGINT NOT NULL,
                files BIGINT NOT NULL,
                limit_bytes BIGINT NOT NULL,
                complete BOOLEAN NOT NULL)",
        )
        .await?;
        db.execute_unprepared("CREATE INDEX site_disk_usage_site_at ON site_disk_usage (site_id, at_ms)").await?;
        db.execute_unprepared("CREATE INDEX site_disk_usage_at ON site_disk_usage (at_ms)").await?;
        let now = Expr::current_timestamp();
        let mut insert = Query::insert();
        insert.into_table(AlertRules::Table).columns([
            AlertRules::Id,
            AlertRules::Metric,
            AlertRules::Scope,
            AlertRules::Warning,
            AlertRules::Critical,
            AlertRules::ForSeconds,
            AlertRules::Enabled,
            AlertRules::CreatedAt,
            AlertRules::UpdatedAt,
        ]);
        for (rule_id, metric, warning, critical, for_seconds) in RULES {
            let rule_id = Uuid::parse_str(rule_id).map_err(|e| DbErr::Custom(e.to_string()))?;
            insert
                .values([
                    rule_id.into(),
                    metric.into(),
                    "global".into(),
                    warning.into(),
                    critical.into(),
                    for_seconds.into(),
                    true.into(),
                    now.clone().into(),
                    now.clone().into(),
                ])
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        manager.exec_stmt(insert).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (rule_id, ..) in RULES {
            db.execute_unprepared(&format!("DELETE FROM alert_rules WHERE id = '{rule_id}'")).await?;
        }
        db.execute_unprepared("DROP TABLE IF EXISTS site_disk_usage").await?;
        manager.alter_table(Table::alter().table(Alerts::Table).drop_column(Alerts::NotifiedSeverity).to_owned()).await
    }
}
