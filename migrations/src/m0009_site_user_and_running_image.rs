//! Sites run as a non-root user unless an admin allows root (`allow_root`), and record the
//! image their serving container actually runs (`running_image`), which differs from the
//! desired `image` while an update has failed. Expand only: a defaulted and a nullable column
//! the running binary ignores.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sites {
    Table,
    AllowRoot,
    RunningImage,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one column at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Sites::Table)
                    .add_column(ColumnDef::new(Sites::AllowRoot).boolean().not_null().default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Sites::Table)
                    .add_column(ColumnDef::new(Sites::RunningImage).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Sites::Table).drop_column(Sites::RunningImage).to_owned()).await?;
        manager.alter_table(Table::alter().table(Sites::Table).drop_column(Sites::AllowRoot).to_owned()).await
    }
}
