//! The runtime's observed state on each site, and the PID limit of each plan.
//!
//! Expand only: every new column is nullable or has a default, so a binary from before this
//! migration keeps working against the new schema.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sites {
    Table,
    /// `ip:port` of the container on its customer network, what nginx proxies to.
    Address,
    /// Docker's health status (`healthy`, `unhealthy`, `starting`) or `none`.
    Health,
    RestartCount,
    LastError,
    /// Hash of the container specification the running container was made from.
    SpecHash,
    /// A specification whose replacement container failed its health check: not retried
    /// until the site changes again, so a broken image is not a crash loop.
    FailedSpecHash,
    /// Set by a delete that asked for the data volume to go too.
    PurgeVolume,
}

#[derive(DeriveIden)]
enum Plans {
    Table,
    MaxPids,
}

fn columns() -> Vec<(DynIden, ColumnDef)> {
    vec![
        (Sites::Table.into_iden(), ColumnDef::new(Sites::Address).string_len(64).null().to_owned()),
        (Sites::Table.into_iden(), ColumnDef::new(Sites::Health).string_len(16).null().to_owned()),
        (Sites::Table.into_iden(), ColumnDef::new(Sites::RestartCount).integer().not_null().default(0).to_owned()),
        (Sites::Table.into_iden(), ColumnDef::new(Sites::LastError).text().null().to_owned()),
        (Sites::Table.into_iden(), ColumnDef::new(Sites::SpecHash).string_len(64).null().to_owned()),
        (Sites::Table.into_iden(), ColumnDef::new(Sites::FailedSpecHash).string_len(64).null().to_owned()),
        (Sites::Table.into_iden(), ColumnDef::new(Sites::PurgeVolume).boolean().not_null().default(false).to_owned()),
        (Plans::Table.into_iden(), ColumnDef::new(Plans::MaxPids).integer().not_null().default(256).to_owned()),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds a single column at a time.
        for (table, col) in columns() {
            let name = col.get_column_name();
            if manager.has_column(&table.to_string(), &name).await? {
                continue;
            }
            manager.alter_table(Table::alter().table(table).add_column(col).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, col) in columns().into_iter().rev() {
            let name = col.get_column_name();
            if !manager.has_column(&table.to_string(), &name).await? {
                continue;
            }
            manager.alter_table(Table::alter().table(table).drop_column(Alias::new(name)).to_owned()).await?;
        }
        Ok(())
    }
}
