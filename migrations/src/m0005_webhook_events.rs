//! Webhook event ids, so a replayed delivery returns the first answer and starts nothing.

use sea_orm_migration::prelude::*;

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
                    .col(ColumnDef::new(WebhookEvents::Id).string_len(128).not_null().primary_key())
                    .col(ColumnDef::new(WebhookEvents::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(WebhookEvents::ReceivedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(WebhookEvents::CustomerId).uuid().null())
                    .col(ColumnDef::new(WebhookEvents::StatusCode).integer().not_null())
                    .col(ColumnDef::new(WebhookEvents::Response).json().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(WebhookEvents::Table).if_exists().to_owned()).await
    }
}
