//! Restore drills: one row per drill of one site (the newest good backup restored into a scratch
//! volume and container, its files compared with the backup's manifest). Expand only: a new
//! table the running binary ignores. No foreign key to `sites` (a drill's record outlives the
//! site, like its backups); customers' rows go with the customer.

use sea_orm_migration::prelude::*;

use crate::columns::{at, at_null, id, text, text_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum BackupDrills {
    Table,
    Id,
    SiteId,
    CustomerId,
    BackupId,
    Status,
    Files,
    Bytes,
    Mismatches,
    Error,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum Customers {
    Table,
    Id,
}

fn count(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BackupDrills::Table)
                    .if_not_exists()
                    .col(id(BackupDrills::Id))
                    .col(ColumnDef::new(BackupDrills::SiteId).uuid().not_null())
                    .col(ColumnDef::new(BackupDrills::CustomerId).uuid().not_null())
                    .col(ColumnDef::new(BackupDrills::BackupId).uuid().not_null())
                    .col(text(BackupDrills::Status, 16))
                    .col(count(BackupDrills::Files))
                    .col(count(BackupDrills::Bytes))
                    .col(count(BackupDrills::Mismatches))
                    .col(text_null(BackupDrills::Error, 2000))
                    .col(at(BackupDrills::StartedAt))
                    .col(at_null(BackupDrills::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(BackupDrills::Table, BackupDrills::CustomerId)
                            .to(Customers::Table, Customers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("backup_drills_customer")
                    .table(BackupDrills::Table)
                    .col(BackupDrills::CustomerId)
                    .col(BackupDrills::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("backup_drills_site")
                    .table(BackupDrills::Table)
                    .col(BackupDrills::SiteId)
                    .col(BackupDrills::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(BackupDrills::Table).if_exists().to_owned()).await
    }
}
