//! A site's data volume can change (a restore fills a fresh volume and switches the site onto
//! it): `sites.data_volume` names the volume the site uses now (NULL: the default name, so
//! existing sites are untouched), and `site_volumes` records the volumes a site no longer uses,
//! kept until an operator discards them or `keep_until` passes. Expand only: a nullable column
//! and a new table the running binary ignores.
//!
//! `site_volumes` has no foreign key to `sites`: a volume outlives the site that used it (a
//! deletion without purge keeps the data), and the housekeeping job still removes it when its
//! time is up.

use sea_orm_migration::prelude::*;

use crate::columns::{at, at_null, text};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sites {
    Table,
    DataVolume,
}

#[derive(DeriveIden)]
enum SiteVolumes {
    Table,
    Name,
    SiteId,
    CustomerId,
    Reason,
    RetiredAt,
    KeepUntil,
    DiscardedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Sites::Table)
                    .add_column(ColumnDef::new(Sites::DataVolume).string_len(255).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SiteVolumes::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(SiteVolumes::Name).string_len(255).not_null().primary_key())
                    .col(ColumnDef::new(SiteVolumes::SiteId).uuid().not_null())
                    .col(ColumnDef::new(SiteVolumes::CustomerId).uuid().not_null())
                    .col(text(SiteVolumes::Reason, 32))
                    .col(at(SiteVolumes::RetiredAt))
                    .col(at(SiteVolumes::KeepUntil))
                    .col(at_null(SiteVolumes::DiscardedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("site_volumes_site")
                    .table(SiteVolumes::Table)
                    .col(SiteVolumes::SiteId)
                    .col(SiteVolumes::RetiredAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("site_volumes_keep_until")
                    .table(SiteVolumes::Table)
                    .col(SiteVolumes::KeepUntil)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(SiteVolumes::Table).if_exists().to_owned()).await?;
        manager.alter_table(Table::alter().table(Sites::Table).drop_column(Sites::DataVolume).to_owned()).await
    }
}
