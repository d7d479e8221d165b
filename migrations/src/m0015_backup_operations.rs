//! Backup operations: the daily integrity checks of customers' repositories (`backup_checks`,
//! one row per repository and run) and the global alert rules on failing backups (`backup`:
//! failed backups of a site since its last good one) and failing integrity checks
//! (`backup_check`). Backups that retention removed are marked with the status `pruned`, a new
//! value of a text column: no schema change. Expand only: a new table the running binary
//! ignores, new rows (seeded with fixed ids, so a re-run or a second replica adds nothing).

use sea_orm::prelude::Uuid;
use sea_orm_migration::prelude::*;

use crate::columns::{at, id, text, text_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum BackupChecks {
    Table,
    Id,
    CustomerId,
    ReadData,
    Ok,
    Error,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum Customers {
    Table,
    Id,
}

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

/// (fixed id, metric, warning, critical, for seconds): a site's failed backups since its last
/// good one (warning at the first, critical at the third), and whether the last integrity check
/// of the customer's repository failed (critical at once).
const RULES: [(&str, &str, f64, f64, i32); 2] = [
    ("01000000-0000-7000-8000-00000000a007", "backup", 1.0, 3.0, 0),
    ("01000000-0000-7000-8000-00000000a008", "backup_check", 1.0, 1.0, 0),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BackupChecks::Table)
                    .if_not_exists()
                    .col(id(BackupChecks::Id))
                    .col(ColumnDef::new(BackupChecks::CustomerId).uuid().not_null())
                    .col(text(BackupChecks::ReadData, 16))
                    .col(ColumnDef::new(BackupChecks::Ok).boolean().not_null())
                    .col(text_null(BackupChecks::Error, 2000))
                    .col(at(BackupChecks::StartedAt))
                    .col(at(BackupChecks::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(BackupChecks::Table, BackupChecks::CustomerId)
                            .to(Customers::Table, Customers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("backup_checks_customer_started")
                    .table(BackupChecks::Table)
                    .col(BackupChecks::CustomerId)
                    .col(BackupChecks::StartedAt)
                    .to_owned(),
            )
            .await?;
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
        use sea_orm_migration::sea_orm::ConnectionTrait;
        let db = manager.get_connection();
        for (rule_id, ..) in RULES {
            db.execute_unprepared(&format!("DELETE FROM alert_rules WHERE id = '{rule_id}'")).await?;
        }
        manager.drop_table(Table::drop().table(BackupChecks::Table).if_exists().to_owned()).await
    }
}
