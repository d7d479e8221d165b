//! Webhook event ids, so a replayed delivery returns the first answer and starts nothing.

use sea_orm_migration::prelude::*;

use crate::columns::{at, int, text};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookEvents {
    Table,
    Id,
    Kind,
    ReceivedAt,
    CustomerId,
    StatusCode,
    Response,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookEvents::Table)
                    .if_not_exists()
                    .col(text(WebhookEvents::Id, 128).primary_key())
                    .col(text(WebhookEvents::Kind, 32))
                    .col(at(WebhookEvents::ReceivedAt))
                    .col(ColumnDef::new(WebhookEvents::CustomerId).uuid().null())
                    .col(int(WebhookEvents::StatusCode))
                    .col(ColumnDef::new(WebhookEvents::Response).json().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(WebhookEvents::Table).if_exists().to_owned()).await
    }
}
