//! The durable job queue, cron schedules and flow runs (issue 5).
//!
//! `jobs` is both the queue and its history: a row is `queued`, `running` (under a lease),
//! `done` or `dead`. Two partial indexes carry the hot paths and are written as plain SQL
//! because both PostgreSQL and SQLite accept `CREATE INDEX ... WHERE`: the claim index covers
//! only queued rows, and the de-duplication index makes a unique key unique only among jobs that
//! are still waiting or running, so a finished job never blocks the next one with its key.

use sea_orm_migration::prelude::*;

use crate::columns::{at, at_null, int, text, text_null};
use sea_orm_migration::sea_orm::Statement;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Kind,
    Queue,
    Priority,
    State,
    Payload,
    Attempts,
    MaxAttempts,
    RunAt,
    LeaseId,
    LeaseExpiresAt,
    LockedBy,
    DedupKey,
    CustomerId,
    FlowRunId,
    ScheduledFor,
    LastError,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum JobSchedules {
    Table,
    Name,
    Cron,
    Kind,
    Payload,
    Enabled,
    Builtin,
    LastTick,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum FlowRuns {
    Table,
    Id,
    Kind,
    State,
    CustomerId,
    Input,
    CurrentStep,
    Error,
    CreatedAt,
    UpdatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum FlowSteps {
    Table,
    Id,
    FlowRunId,
    Position,
    Name,
    State,
    Attempts,
    IdempotencyKey,
    Error,
    StartedAt,
    FinishedAt,
}

/// Indexes both backends create from the same SQL.
const INDEXES: &[&str] = &[
    "CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (queue, priority DESC, run_at) WHERE state = 'queued'",
    "CREATE UNIQUE INDEX IF NOT EXISTS jobs_dedup ON jobs (dedup_key) WHERE state IN ('queued', 'running')",
    "CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (lease_expires_at) WHERE state = 'running'",
    "CREATE INDEX IF NOT EXISTS jobs_state_kind ON jobs (state, kind)",
    "CREATE INDEX IF NOT EXISTS jobs_customer ON jobs (customer_id)",
    "CREATE INDEX IF NOT EXISTS jobs_flow_run ON jobs (flow_run_id)",
    "CREATE INDEX IF NOT EXISTS flow_runs_state_kind ON flow_runs (state, kind)",
    "CREATE INDEX IF NOT EXISTS flow_runs_customer ON flow_runs (customer_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS flow_steps_run_position ON flow_steps (flow_run_id, position)",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // No foreign keys to customers: a job's history outlives the customer it named, like
        // the audit log.
        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Jobs::Id).uuid().not_null().primary_key())
                    .col(text(Jobs::Kind, 100))
                    .col(text(Jobs::Queue, 32))
                    .col(int(Jobs::Priority))
                    .col(text(Jobs::State, 16))
                    .col(ColumnDef::new(Jobs::Payload).json().not_null())
                    .col(int(Jobs::Attempts))
                    .col(int(Jobs::MaxAttempts))
                    .col(at(Jobs::RunAt))
                    .col(ColumnDef::new(Jobs::LeaseId).uuid().null())
                    .col(at_null(Jobs::LeaseExpiresAt))
                    .col(text_null(Jobs::LockedBy, 128))
                    .col(text_null(Jobs::DedupKey, 200))
                    .col(ColumnDef::new(Jobs::CustomerId).uuid().null())
                    .col(ColumnDef::new(Jobs::FlowRunId).uuid().null())
                    .col(at_null(Jobs::ScheduledFor))
                    .col(ColumnDef::new(Jobs::LastError).text().null())
                    .col(at(Jobs::CreatedAt))
                    .col(at(Jobs::UpdatedAt))
                    .col(at_null(Jobs::StartedAt))
                    .col(at_null(Jobs::FinishedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(JobSchedules::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(JobSchedules::Name).string_len(100).not_null().primary_key())
                    .col(text(JobSchedules::Cron, 100))
                    .col(text(JobSchedules::Kind, 100))
                    .col(ColumnDef::new(JobSchedules::Payload).json().not_null())
                    .col(ColumnDef::new(JobSchedules::Enabled).boolean().not_null().default(true))
                    .col(ColumnDef::new(JobSchedules::Builtin).boolean().not_null().default(false))
                    .col(at_null(JobSchedules::LastTick))
                    .col(at(JobSchedules::CreatedAt))
                    .col(at(JobSchedules::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(FlowRuns::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(FlowRuns::Id).uuid().not_null().primary_key())
                    .col(text(FlowRuns::Kind, 100))
                    .col(text(FlowRuns::State, 16))
                    .col(ColumnDef::new(FlowRuns::CustomerId).uuid().null())
                    .col(ColumnDef::new(FlowRuns::Input).json().not_null())
                    .col(text_null(FlowRuns::CurrentStep, 100))
                    .col(ColumnDef::new(FlowRuns::Error).text().null())
                    .col(at(FlowRuns::CreatedAt))
                    .col(at(FlowRuns::UpdatedAt))
                    .col(at_null(FlowRuns::FinishedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(FlowSteps::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(FlowSteps::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(FlowSteps::FlowRunId).uuid().not_null())
                    .col(int(FlowSteps::Position))
                    .col(text(FlowSteps::Name, 100))
                    .col(text(FlowSteps::State, 16))
                    .col(int(FlowSteps::Attempts))
                    .col(text(FlowSteps::IdempotencyKey, 200).unique_key())
                    .col(ColumnDef::new(FlowSteps::Error).text().null())
                    .col(at_null(FlowSteps::StartedAt))
                    .col(at_null(FlowSteps::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(FlowSteps::Table, FlowSteps::FlowRunId)
                            .to(FlowRuns::Table, FlowRuns::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        let backend = manager.get_database_backend();
        for sql in INDEXES {
            manager.get_connection().execute(Statement::from_string(backend, (*sql).to_owned())).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            FlowSteps::Table.into_iden(),
            FlowRuns::Table.into_iden(),
            JobSchedules::Table.into_iden(),
            Jobs::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
