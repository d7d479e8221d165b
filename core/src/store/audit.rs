//! The append-only audit log: written in the transaction of the change it records.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryTrait};
use serde_json::Value;
use uuid::Uuid;

use super::page::{self, Page, Paged};
use crate::access::Caller;
use crate::entities::audit_log;
use crate::error::Result;

/// What happened, to what.
#[derive(Debug, Clone)]
pub struct Event {
    pub action: &'static str,
    pub target_type: &'static str,
    pub target_id: Option<String>,
    pub customer_id: Option<Uuid>,
    pub details: Value,
}

impl Event {
    pub fn new(action: &'static str, target_type: &'static str, target_id: impl ToString) -> Self {
        Self {
            action,
            target_type,
            target_id: Some(target_id.to_string()),
            customer_id: None,
            details: Value::Object(Default::default()),
        }
    }

    pub fn customer(mut self, customer_id: Option<Uuid>) -> Self {
        self.customer_id = customer_id;
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

pub async fn record(db: &impl ConnectionTrait, caller: &Caller, event: Event) -> Result<()> {
    record_many(db, caller, vec![event]).await
}

/// Several entries by one caller in one statement (one round trip), in the given order.
pub async fn record_many(db: &impl ConnectionTrait, caller: &Caller, events: Vec<Event>) -> Result<()> {
    if let Some(insert) = insert_statement(caller, events) {
        db.execute(db.get_database_backend().build(&insert)).await?;
    }
    Ok(())
}

/// The INSERT [`record_many`] sends, for a caller that sends it with others
/// ([`super::batch::Batch`]); `None` when there is nothing to record.
pub(crate) fn insert_statement(caller: &Caller, events: Vec<Event>) -> Option<sea_orm::sea_query::InsertStatement> {
    if events.is_empty() {
        return None;
    }
    let at = super::now();
    let entries = events.into_iter().map(|event| entry(caller, event, at));
    Some(audit_log::Entity::insert_many(entries).into_query())
}

fn entry(caller: &Caller, event: Event, at: DateTime<Utc>) -> audit_log::ActiveModel {
    audit_log::ActiveModel {
        id: Set(Uuid::now_v7()),
        at: Set(at),
        actor_id: Set(caller.user_id),
        actor: Set(caller.actor.clone()),
        action: Set(event.action.to_owned()),
        target_type: Set(event.target_type.to_owned()),
        target_id: Set(event.target_id),
        customer_id: Set(event.customer_id),
        ip: Set(caller.ip.clone()),
        request_id: Set(caller.request_id.clone()),
        details: Set(event.details),
    }
}

#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Exact actor (e-mail, `cli`, `system`).
    pub actor: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub customer_id: Option<Uuid>,
    pub action: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Leave out sign-in bookkeeping (`auth.*`: sign-ins, sign-outs, failed sign-ins).
    pub exclude_auth: bool,
}

/// Admin-only: the audit log spans every tenant.
pub async fn list(
    db: &impl ConnectionTrait,
    caller: &Caller,
    filter: Filter,
    page: Page,
) -> Result<Paged<audit_log::Model>> {
    caller.require_admin()?;
    let mut q = audit_log::Entity::find();
    if let Some(actor) = filter.actor {
        q = q.filter(audit_log::Column::Actor.eq(actor.to_lowercase()));
    }
    if let Some(t) = filter.target_type {
        q = q.filter(audit_log::Column::TargetType.eq(t));
    }
    if let Some(t) = filter.target_id {
        q = q.filter(audit_log::Column::TargetId.eq(t));
    }
    if let Some(c) = filter.customer_id {
        q = q.filter(audit_log::Column::CustomerId.eq(c));
    }
    if let Some(a) = filter.action {
        q = q.filter(audit_log::Column::Action.eq(a));
    }
    if let Some(t) = filter.since {
        q = q.filter(audit_log::Column::At.gte(t));
    }
    if let Some(t) = filter.until {
        q = q.filter(audit_log::Column::At.lt(t));
    }
    if filter.exclude_auth {
        q = q.filter(audit_log::Column::Action.not_like("auth.%"));
    }
    page::fetch(db, q, audit_log::Column::Id, page, |m| m.id).await
}
