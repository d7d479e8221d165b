//! Backup schedules and GFS retention per plan, overridable per site (issue 11).
//!
//! Plans get the backup cron (hourly by default), the verified daily cron and how many hourly,
//! daily, weekly, monthly and yearly copies to keep; sites get the same as nullable overrides
//! (NULL: the plan's). A plan's `keep_daily` starts from its `backup_retention_days`, which
//! stays as its mirror (docs/backups.md). Expand only: defaulted and nullable columns the
//! running binary ignores.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Plans {
    Table,
    BackupCron,
    BackupVerifyCron,
    KeepHourly,
    KeepDaily,
    KeepWeekly,
    KeepMonthly,
    KeepYearly,
    BackupRetentionDays,
}

#[derive(DeriveIden, Clone, Copy)]
enum Sites {
    Table,
    BackupCron,
    BackupVerifyCron,
    KeepHourly,
    KeepDaily,
    KeepWeekly,
    KeepMonthly,
    KeepYearly,
}

/// The defaults of a plan that has none yet (issue 11).
const KEEP: [(Plans, Sites, i32); 5] = [
    (Plans::KeepHourly, Sites::KeepHourly, 24),
    (Plans::KeepDaily, Sites::KeepDaily, 7),
    (Plans::KeepWeekly, Sites::KeepWeekly, 4),
    (Plans::KeepMonthly, Sites::KeepMonthly, 12),
    (Plans::KeepYearly, Sites::KeepYearly, 10),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one column at a time.
        let mut plan_columns = vec![
            ColumnDef::new(Plans::BackupCron).string_len(64).not_null().default("0 * * * *").to_owned(),
            ColumnDef::new(Plans::BackupVerifyCron).string_len(64).not_null().default("30 3 * * *").to_owned(),
        ];
        for (plan, _, default) in KEEP {
            plan_columns.push(ColumnDef::new(plan).integer().not_null().default(default).to_owned());
        }
        for mut col in plan_columns {
            manager.alter_table(Table::alter().table(Plans::Table).add_column(&mut col).to_owned()).await?;
        }
        // The days of backups a plan promised become its daily copies.
        manager
            .exec_stmt(
                Query::update()
                    .table(Plans::Table)
                    .value(Plans::KeepDaily, Expr::col(Plans::BackupRetentionDays))
                    .to_owned(),
            )
            .await?;

        let mut site_columns = vec![
            ColumnDef::new(Sites::BackupCron).string_len(64).null().to_owned(),
            ColumnDef::new(Sites::BackupVerifyCron).string_len(64).null().to_owned(),
        ];
        for (_, site, _) in KEEP {
            site_columns.push(ColumnDef::new(site).integer().null().to_owned());
        }
        for mut col in site_columns {
            manager.alter_table(Table::alter().table(Sites::Table).add_column(&mut col).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sites = vec![Sites::BackupCron, Sites::BackupVerifyCron];
        let mut plans = vec![Plans::BackupCron, Plans::BackupVerifyCron];
        for (plan, site, _) in KEEP {
            plans.push(plan);
            sites.push(site);
        }
        for col in sites {
            manager.alter_table(Table::alter().table(Sites::Table).drop_column(col).to_owned()).await?;
        }
        for col in plans {
            manager.alter_table(Table::alter().table(Plans::Table).drop_column(col).to_owned()).await?;
        }
        Ok(())
    }
}
