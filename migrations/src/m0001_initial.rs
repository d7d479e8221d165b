//! The trunk's schema: plans, customers, users, sites and their domains, API tokens, one-time
//! password links and the append-only audit log.

use sea_orm_migration::prelude::*;

use crate::columns::{at, at_null, id, int, text, text_null};
use sea_orm_migration::sea_orm::{DbBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Plans {
    Table,
    Id,
    Name,
    CpuMillis,
    MemoryMb,
    StorageMb,
    MaxSites,
    BackupRetentionDays,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Customers {
    Table,
    Id,
    Email,
    CompanyName,
    PlanId,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    Role,
    CustomerId,
    TotpSecret,
    TotpEnabled,
    Disabled,
    SessionEpoch,
    LastLoginAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Sites {
    Table,
    Id,
    CustomerId,
    Name,
    Image,
    Env,
    DesiredState,
    Status,
    StatusReason,
    ContainerId,
    ObservedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SiteDomains {
    Table,
    Domain,
    SiteId,
    Position,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    UserId,
    Name,
    TokenHash,
    Prefix,
    LastUsedAt,
    RevokedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PasswordTokens {
    Table,
    Id,
    UserId,
    TokenHash,
    ExpiresAt,
    UsedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    ActorId,
    Actor,
    Action,
    TargetType,
    TargetId,
    CustomerId,
    Ip,
    RequestId,
    Details,
}

/// Seeded plans: (id, name, cpu millis, memory MB, storage MB, max sites, backup days).
const PLANS: &[(&str, &str, i32, i32, i32, i32, i32)] = &[
    ("starter", "Starter", 500, 256, 1_024, 1, 7),
    ("business", "Business", 1_000, 512, 5_120, 5, 14),
    ("pro", "Pro", 2_000, 1_024, 20_480, 20, 30),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Plans::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Plans::Id).string_len(32).not_null().primary_key())
                    .col(text(Plans::Name, 64))
                    .col(int(Plans::CpuMillis))
                    .col(int(Plans::MemoryMb))
                    .col(int(Plans::StorageMb))
                    .col(int(Plans::MaxSites))
                    .col(int(Plans::BackupRetentionDays))
                    .col(at(Plans::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Customers::Table)
                    .if_not_exists()
                    .col(id(Customers::Id))
                    .col(text(Customers::Email, 254).unique_key())
                    .col(text(Customers::CompanyName, 200))
                    .col(text(Customers::PlanId, 32))
                    .col(text(Customers::Status, 16))
                    .col(at(Customers::CreatedAt))
                    .col(at(Customers::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Customers::Table, Customers::PlanId)
                            .to(Plans::Table, Plans::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
                    .col(id(Users::Id))
                    .col(text(Users::Email, 254).unique_key())
                    .col(text_null(Users::PasswordHash, 255))
                    .col(text(Users::Role, 16))
                    .col(ColumnDef::new(Users::CustomerId).uuid().null())
                    .col(ColumnDef::new(Users::TotpSecret).text().null())
                    .col(ColumnDef::new(Users::TotpEnabled).boolean().not_null().default(false))
                    .col(ColumnDef::new(Users::Disabled).boolean().not_null().default(false))
                    .col(ColumnDef::new(Users::SessionEpoch).integer().not_null().default(0))
                    .col(at_null(Users::LastLoginAt))
                    .col(at(Users::CreatedAt))
                    .col(at(Users::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Users::Table, Users::CustomerId)
                            .to(Customers::Table, Customers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Sites::Table)
                    .if_not_exists()
                    .col(id(Sites::Id))
                    .col(ColumnDef::new(Sites::CustomerId).uuid().not_null())
                    .col(text(Sites::Name, 63))
                    .col(text(Sites::Image, 255))
                    .col(ColumnDef::new(Sites::Env).text().not_null())
                    .col(text(Sites::DesiredState, 16))
                    .col(text(Sites::Status, 16))
                    .col(ColumnDef::new(Sites::StatusReason).text().null())
                    .col(text_null(Sites::ContainerId, 128))
                    .col(at_null(Sites::ObservedAt))
                    .col(at(Sites::CreatedAt))
                    .col(at(Sites::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sites::Table, Sites::CustomerId)
                            .to(Customers::Table, Customers::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("sites_customer_name")
                    .table(Sites::Table)
                    .col(Sites::CustomerId)
                    .col(Sites::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SiteDomains::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(SiteDomains::Domain).string_len(253).not_null().primary_key())
                    .col(ColumnDef::new(SiteDomains::SiteId).uuid().not_null())
                    .col(int(SiteDomains::Position))
                    .col(at(SiteDomains::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SiteDomains::Table, SiteDomains::SiteId)
                            .to(Sites::Table, Sites::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("site_domains_site")
                    .table(SiteDomains::Table)
                    .col(SiteDomains::SiteId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiTokens::Table)
                    .if_not_exists()
                    .col(id(ApiTokens::Id))
                    .col(ColumnDef::new(ApiTokens::UserId).uuid().not_null())
                    .col(text(ApiTokens::Name, 100))
                    .col(text(ApiTokens::TokenHash, 64).unique_key())
                    .col(text(ApiTokens::Prefix, 16))
                    .col(at_null(ApiTokens::LastUsedAt))
                    .col(at_null(ApiTokens::RevokedAt))
                    .col(at(ApiTokens::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiTokens::Table, ApiTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PasswordTokens::Table)
                    .if_not_exists()
                    .col(id(PasswordTokens::Id))
                    .col(ColumnDef::new(PasswordTokens::UserId).uuid().not_null())
                    .col(text(PasswordTokens::TokenHash, 64).unique_key())
                    .col(at(PasswordTokens::ExpiresAt))
                    .col(at_null(PasswordTokens::UsedAt))
                    .col(at(PasswordTokens::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PasswordTokens::Table, PasswordTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        // No foreign keys: the audit trail outlives the customers and users it names.
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .if_not_exists()
                    .col(id(AuditLog::Id))
                    .col(at(AuditLog::At))
                    .col(ColumnDef::new(AuditLog::ActorId).uuid().null())
                    .col(text(AuditLog::Actor, 254))
                    .col(text(AuditLog::Action, 64))
                    .col(text(AuditLog::TargetType, 32))
                    .col(text_null(AuditLog::TargetId, 64))
                    .col(ColumnDef::new(AuditLog::CustomerId).uuid().null())
                    .col(text_null(AuditLog::Ip, 64))
                    .col(text_null(AuditLog::RequestId, 128))
                    .col(ColumnDef::new(AuditLog::Details).json().not_null())
                    .to_owned(),
            )
            .await?;
        for (name, col) in [("audit_log_at", AuditLog::At), ("audit_log_actor", AuditLog::Actor)] {
            manager
                .create_index(Index::create().if_not_exists().name(name).table(AuditLog::Table).col(col).to_owned())
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("audit_log_target")
                    .table(AuditLog::Table)
                    .col(AuditLog::TargetType)
                    .col(AuditLog::TargetId)
                    .to_owned(),
            )
            .await?;

        append_only_audit_log(manager).await?;

        let now = chrono_now(manager);
        for (id, name, cpu, mem, storage, max_sites, retention) in PLANS {
            let insert = Query::insert()
                .into_table(Plans::Table)
                .columns([
                    Plans::Id,
                    Plans::Name,
                    Plans::CpuMillis,
                    Plans::MemoryMb,
                    Plans::StorageMb,
                    Plans::MaxSites,
                    Plans::BackupRetentionDays,
                    Plans::CreatedAt,
                ])
                .values_panic([
                    (*id).into(),
                    (*name).into(),
                    (*cpu).into(),
                    (*mem).into(),
                    (*storage).into(),
                    (*max_sites).into(),
                    (*retention).into(),
                    now.clone(),
                ])
                .on_conflict(OnConflict::column(Plans::Id).do_nothing().to_owned())
                .to_owned();
            let backend = manager.get_database_backend();
            manager.get_connection().execute(backend.build(&insert)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditLog::Table.into_iden(),
            PasswordTokens::Table.into_iden(),
            ApiTokens::Table.into_iden(),
            SiteDomains::Table.into_iden(),
            Sites::Table.into_iden(),
            Users::Table.into_iden(),
            Customers::Table.into_iden(),
            Plans::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        if manager.get_database_backend() == DbBackend::Postgres {
            let db = manager.get_connection();
            db.execute_unprepared("DROP FUNCTION IF EXISTS audit_log_append_only()").await?;
        }
        Ok(())
    }
}

/// The database itself refuses to change or remove audit entries, whatever code runs.
async fn append_only_audit_log(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let statements: &[&str] = match manager.get_database_backend() {
        DbBackend::Postgres => &[
            "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$",
            "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log \
             FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
        ],
        DbBackend::Sqlite => &[
            "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log \
             BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
            "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log \
             BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
        ],
        DbBackend::MySql => &[],
    };
    for sql in statements {
        db.execute(Statement::from_string(manager.get_database_backend(), (*sql).to_owned())).await?;
    }
    Ok(())
}

/// "Now" as a SQL expression both backends store in a timestamp-with-time-zone column.
fn chrono_now(manager: &SchemaManager) -> SimpleExpr {
    match manager.get_database_backend() {
        DbBackend::Sqlite => Expr::cust("strftime('%Y-%m-%dT%H:%M:%fZ','now')"),
        _ => Expr::current_timestamp().into(),
    }
}
