//! Silences: while one covers an alert (all sites, one customer's or one site's, optionally
//! one metric), the alert still moves through its states and its incident records everything,
//! but no notification is sent. Expand only: a new table the running binary ignores.

use sea_orm_migration::prelude::*;

use crate::columns::{at, id, text, text_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AlertSilences {
    Table,
    Id,
    Scope,
    CustomerId,
    SiteId,
    Metric,
    StartsAt,
    EndsAt,
    Reason,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Sites {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Customers {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AlertSilences::Table)
                    .if_not_exists()
                    .col(id(AlertSilences::Id))
                    .col(text(AlertSilences::Scope, 16))
                    .col(ColumnDef::new(AlertSilences::CustomerId).uuid().null())
                    .col(ColumnDef::new(AlertSilences::SiteId).uuid().null())
                    .col(text_null(AlertSilences::Metric, 16))
                    .col(at(AlertSilences::StartsAt))
                    .col(at(AlertSilences::EndsAt))
                    .col(text(AlertSilences::Reason, 500))
                    .col(text(AlertSilences::CreatedBy, 320))
                    .col(at(AlertSilences::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AlertSilences::Table, AlertSilences::CustomerId)
                            .to(Customers::Table, Customers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(AlertSilences::Table, AlertSilences::SiteId)
                            .to(Sites::Table, Sites::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The check before each notification reads the silences that end after now.
        manager
            .create_index(
                Index::create()
                    .name("alert_silences_ends_at")
                    .table(AlertSilences::Table)
                    .col(AlertSilences::EndsAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AlertSilences::Table).if_exists().to_owned()).await
    }
}
