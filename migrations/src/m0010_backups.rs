//! Site backups: one row per backup run (what was asked, where it stands, the snapshot it made
//! and whether that snapshot was read back). Expand only: a new table the running binary ignores.
//! No foreign key to `sites`: a backup outlives its site (the snapshot is still in the
//! repository), and customers' rows go with the customer.

use sea_orm_migration::prelude::*;

use crate::columns::{at, at_null, id, text, text_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Backups {
    Table,
    Id,
    SiteId,
    CustomerId,
    Kind,
    Status,
    SnapshotId,
    SizeBytes,
    AddedBytes,
    FileCount,
    ManifestSha256,
    Verified,
    Target,
    Error,
    JobId,
    StartedAt,
    FinishedAt,
    CreatedAt,
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
                    .table(Backups::Table)
                    .if_not_exists()
                    .col(id(Backups::Id))
                    .col(ColumnDef::new(Backups::SiteId).uuid().not_null())
                    .col(ColumnDef::new(Backups::CustomerId).uuid().not_null())
                    .col(text(Backups::Kind, 16))
                    .col(text(Backups::Status, 16))
                    .col(text_null(Backups::SnapshotId, 64))
                    .col(count(Backups::SizeBytes))
                    .col(count(Backups::AddedBytes))
                    .col(count(Backups::FileCount))
                    .col(text_null(Backups::ManifestSha256, 64))
                    .col(ColumnDef::new(Backups::Verified).boolean().not_null().default(false))
                    .col(text(Backups::Target, 16))
                    .col(text_null(Backups::Error, 2000))
                    .col(ColumnDef::new(Backups::JobId).uuid().null())
                    .col(at_null(Backups::StartedAt))
                    .col(at_null(Backups::FinishedAt))
                    .col(at(Backups::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Backups::Table, Backups::CustomerId)
                            .to(Customers::Table, Customers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("backups_site_created")
                    .table(Backups::Table)
                    .col(Backups::SiteId)
                    .col(Backups::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("backups_customer_created")
                    .table(Backups::Table)
                    .col(Backups::CustomerId)
                    .col(Backups::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Backups::Table).if_exists().to_owned()).await
    }
}
