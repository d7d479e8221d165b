//! Alerting: rules (what to watch, per metric, globally, per plan or per site), alerts (the
//! state of one rule's metric on one site), incidents with their timeline, and the channels
//! notifications go to. Expand only: new tables the running binary ignores. The global default
//! rules are seeded with fixed ids, so a re-run or a second replica adds nothing.

use sea_orm::prelude::Uuid;
use sea_orm_migration::prelude::*;

use crate::columns::{at, at_null, id, int, text, text_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AlertRules {
    Table,
    Id,
    Metric,
    Scope,
    PlanId,
    SiteId,
    Warning,
    Critical,
    ForSeconds,
    Enabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Alerts {
    Table,
    Id,
    SiteId,
    CustomerId,
    Metric,
    RuleId,
    State,
    Severity,
    Value,
    PendingSince,
    ClearSince,
    FiredAt,
    ResolvedAt,
    Fingerprint,
    IncidentId,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Incidents {
    Table,
    Id,
    SiteId,
    CustomerId,
    AlertId,
    Metric,
    Severity,
    Status,
    Fingerprint,
    OpenedAt,
    AcknowledgedAt,
    AcknowledgedBy,
    ResolvedAt,
}

#[derive(DeriveIden)]
enum IncidentEvents {
    Table,
    Id,
    IncidentId,
    At,
    Kind,
    Detail,
}

#[derive(DeriveIden)]
enum NotificationChannels {
    Table,
    Id,
    CustomerId,
    Kind,
    Target,
    Enabled,
    AllowPrivate,
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

#[derive(DeriveIden)]
enum Plans {
    Table,
    Id,
}

/// The default global rules: (fixed id, metric, warning, critical, for seconds). CPU in percent
/// of one core, memory in percent of the container's limit, down in seconds without a passing
/// uptime check.
const DEFAULT_RULES: [(&str, &str, f64, f64, i32); 3] = [
    ("01000000-0000-7000-8000-00000000a001", "cpu", 70.0, 90.0, 300),
    ("01000000-0000-7000-8000-00000000a002", "memory", 80.0, 95.0, 300),
    ("01000000-0000-7000-8000-00000000a003", "down", 60.0, 300.0, 0),
];

fn fk(
    from: impl IntoIden + 'static,
    col: impl IntoIden + 'static,
    to: impl IntoIden + 'static,
    to_col: impl IntoIden + 'static,
) -> ForeignKeyCreateStatement {
    ForeignKey::create().from(from, col).to(to, to_col).on_delete(ForeignKeyAction::Cascade).to_owned()
}

fn double(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).double().not_null().to_owned()
}

fn flag(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).boolean().not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AlertRules::Table)
                    .if_not_exists()
                    .col(id(AlertRules::Id))
                    .col(text(AlertRules::Metric, 16))
                    .col(text(AlertRules::Scope, 16))
                    .col(text_null(AlertRules::PlanId, 32))
                    .col(ColumnDef::new(AlertRules::SiteId).uuid().null())
                    .col(double(AlertRules::Warning))
                    .col(double(AlertRules::Critical))
                    .col(int(AlertRules::ForSeconds))
                    .col(flag(AlertRules::Enabled))
                    .col(at(AlertRules::CreatedAt))
                    .col(at(AlertRules::UpdatedAt))
                    .foreign_key(&mut fk(AlertRules::Table, AlertRules::PlanId, Plans::Table, Plans::Id))
                    .foreign_key(&mut fk(AlertRules::Table, AlertRules::SiteId, Sites::Table, Sites::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Incidents::Table)
                    .if_not_exists()
                    .col(id(Incidents::Id))
                    .col(ColumnDef::new(Incidents::SiteId).uuid().not_null())
                    .col(ColumnDef::new(Incidents::CustomerId).uuid().not_null())
                    .col(ColumnDef::new(Incidents::AlertId).uuid().not_null())
                    .col(text(Incidents::Metric, 16))
                    .col(text(Incidents::Severity, 16))
                    .col(text(Incidents::Status, 16))
                    .col(text(Incidents::Fingerprint, 64))
                    .col(at(Incidents::OpenedAt))
                    .col(at_null(Incidents::AcknowledgedAt))
                    .col(text_null(Incidents::AcknowledgedBy, 320))
                    .col(at_null(Incidents::ResolvedAt))
                    .foreign_key(&mut fk(Incidents::Table, Incidents::SiteId, Sites::Table, Sites::Id))
                    .foreign_key(&mut fk(Incidents::Table, Incidents::CustomerId, Customers::Table, Customers::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("incidents_customer_opened")
                    .table(Incidents::Table)
                    .col(Incidents::CustomerId)
                    .col(Incidents::OpenedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IncidentEvents::Table)
                    .if_not_exists()
                    .col(id(IncidentEvents::Id))
                    .col(ColumnDef::new(IncidentEvents::IncidentId).uuid().not_null())
                    .col(at(IncidentEvents::At))
                    .col(text(IncidentEvents::Kind, 16))
                    .col(text(IncidentEvents::Detail, 1000))
                    .foreign_key(&mut fk(
                        IncidentEvents::Table,
                        IncidentEvents::IncidentId,
                        Incidents::Table,
                        Incidents::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("incident_events_incident_at")
                    .table(IncidentEvents::Table)
                    .col(IncidentEvents::IncidentId)
                    .col(IncidentEvents::At)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alerts::Table)
                    .if_not_exists()
                    .col(id(Alerts::Id))
                    .col(ColumnDef::new(Alerts::SiteId).uuid().not_null())
                    .col(ColumnDef::new(Alerts::CustomerId).uuid().not_null())
                    .col(text(Alerts::Metric, 16))
                    .col(ColumnDef::new(Alerts::RuleId).uuid().not_null())
                    .col(text(Alerts::State, 16))
                    .col(text_null(Alerts::Severity, 16))
                    .col(ColumnDef::new(Alerts::Value).double().null())
                    .col(at_null(Alerts::PendingSince))
                    .col(at_null(Alerts::ClearSince))
                    .col(at_null(Alerts::FiredAt))
                    .col(at_null(Alerts::ResolvedAt))
                    .col(text(Alerts::Fingerprint, 64))
                    .col(ColumnDef::new(Alerts::IncidentId).uuid().null())
                    .col(at(Alerts::UpdatedAt))
                    .foreign_key(&mut fk(Alerts::Table, Alerts::SiteId, Sites::Table, Sites::Id))
                    .to_owned(),
            )
            .await?;
        // One alert per site and metric.
        manager
            .create_index(
                Index::create()
                    .name("alerts_site_metric")
                    .table(Alerts::Table)
                    .col(Alerts::SiteId)
                    .col(Alerts::Metric)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(NotificationChannels::Table)
                    .if_not_exists()
                    .col(id(NotificationChannels::Id))
                    .col(ColumnDef::new(NotificationChannels::CustomerId).uuid().null())
                    .col(text(NotificationChannels::Kind, 16))
                    .col(text(NotificationChannels::Target, 2048))
                    .col(flag(NotificationChannels::Enabled))
                    .col(flag(NotificationChannels::AllowPrivate))
                    .col(at(NotificationChannels::CreatedAt))
                    .foreign_key(&mut fk(
                        NotificationChannels::Table,
                        NotificationChannels::CustomerId,
                        Customers::Table,
                        Customers::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        let now = Expr::current_timestamp();
        let mut insert = Query::insert();
        insert.into_table(AlertRules::Table).columns([
            AlertRules::Id,
            AlertRules::Metric,
            AlertRules::Scope,
            AlertRules::Warning,
            AlertRules::Critical,
            AlertRules::ForSeconds,
            AlertRules::Enabled,
            AlertRules::CreatedAt,
            AlertRules::UpdatedAt,
        ]);
        for (rule_id, metric, warning, critical, for_seconds) in DEFAULT_RULES {
            let rule_id = Uuid::parse_str(rule_id).map_err(|e| DbErr::Custom(e.to_string()))?;
            insert
                .values([
                    rule_id.into(),
                    metric.into(),
                    "global".into(),
                    warning.into(),
                    critical.into(),
                    for_seconds.into(),
                    true.into(),
                    now.clone().into(),
                    now.clone().into(),
                ])
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        manager.exec_stmt(insert).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["notification_channels", "alerts", "incident_events", "incidents", "alert_rules"] {
            manager.drop_table(Table::drop().table(Alias::new(table)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
