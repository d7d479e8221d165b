//! Alert silences (admins only): while a silence covers an alert — every site, one customer's
//! sites or one site, for every metric or one — the alert still moves through its states and its
//! incident still records everything, but no notification is sent; the incident's timeline says
//! `silenced` instead. [`covering`] is the one check, made where notifications are enqueued
//! (`store::alerts::record`).

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, Event};
use crate::access::{self, Caller};
use crate::entities::{alert_silences, customers};
use crate::error::{Error, Fields, Result};

/// The longest silence: anything longer is a rule to switch off, not a silence.
pub const MAX_DAYS: i64 = 90;
const MAX_REASON: usize = 500;

/// A silence to create.
#[derive(Debug, Clone, Default)]
pub struct NewSilence {
    /// `all`, `customer` or `site`.
    pub scope: String,
    /// With scope `customer`.
    pub customer_id: Option<Uuid>,
    /// With scope `site`.
    pub site_id: Option<Uuid>,
    /// One metric (`cpu`, `memory`, `down`, ...); `None` for every metric.
    pub metric: Option<String>,
    /// Default: now.
    pub starts_at: Option<DateTime<Utc>>,
    /// Required, after the start and in the future, at most [`MAX_DAYS`] after the start.
    pub ends_at: Option<DateTime<Utc>>,
    pub reason: String,
}

/// Whether a silence is in force at `at`.
pub fn is_active(s: &alert_silences::Model, at: DateTime<Utc>) -> bool {
    s.starts_at <= at && at < s.ends_at
}

/// Creates a silence (admins only), audited.
pub async fn create<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    new: NewSilence,
) -> Result<alert_silences::Model> {
    caller.require_admin()?;
    let now = super::now();
    let mut fields = Fields::new();
    let (customer_id, site_id) = match new.scope.as_str() {
        "all" => (None, None),
        "customer" => match new.customer_id {
            Some(c) => (Some(c), None),
            None => {
                fields.check::<()>("customer_id", Err("is required for a customer's silence".into()));
                (None, None)
            }
        },
        "site" => match new.site_id {
            Some(s) => (None, Some(s)),
            None => {
                fields.check::<()>("site_id", Err("is required for a site's silence".into()));
                (None, None)
            }
        },
        _ => {
            fields.check::<()>("scope", Err("must be all, customer or site".into()));
            (None, None)
        }
    };
    let metric = new.metric.map(|m| m.trim().to_owned()).filter(|m| !m.is_empty());
    if let Some(m) = &metric {
        if !crate::alerting::METRICS.contains(&m.as_str()) {
            let known = crate::alerting::METRICS.join(", ");
            fields.check::<()>("metric", Err(format!("must be one of {known}, or empty for every metric")));
        }
    }
    let starts_at = new.starts_at.unwrap_or(now);
    match new.ends_at {
        None => fields.check::<()>("ends_at", Err("is required: a silence always ends".into())),
        Some(end) if end <= starts_at => fields.check::<()>("ends_at", Err("must be after the start".into())),
        Some(end) if end <= now => fields.check::<()>("ends_at", Err("must be in the future".into())),
        Some(end) if end - starts_at > Duration::days(MAX_DAYS) => {
            fields.check::<()>("ends_at", Err(format!("must be at most {MAX_DAYS} days after the start")))
        }
        Some(_) => None,
    };
    let reason = new.reason.trim().to_owned();
    if reason.chars().count() > MAX_REASON {
        fields.check::<()>("reason", Err(format!("must be at most {MAX_REASON} characters")));
    }
    if reason.contains(|c: char| c.is_control()) {
        fields.check::<()>("reason", Err("must be one line of text".into()));
    }
    fields.finish()?;
    let ends_at = new.ends_at.unwrap_or(now);
    let txn = db.begin().await?;
    // The customer or site must exist; its customer is recorded for the audit log.
    let owner = match (customer_id, site_id) {
        (Some(c), _) => {
            access::customers(caller)
                .filter(customers::Column::Id.eq(c))
                .one(&txn)
                .await?
                .ok_or_else(|| Error::invalid("customer_id", "no such customer"))?;
            Some(c)
        }
        (_, Some(s)) => {
            let site = access::sites(caller)
                .filter(crate::entities::sites::Column::Id.eq(s))
                .one(&txn)
                .await?
                .ok_or_else(|| Error::invalid("site_id", "no such site"))?;
            Some(site.customer_id)
        }
        _ => None,
    };
    let model = alert_silences::ActiveModel {
        id: Set(Uuid::now_v7()),
        scope: Set(new.scope.clone()),
        customer_id: Set(customer_id),
        site_id: Set(site_id),
        metric: Set(metric),
        starts_at: Set(starts_at),
        ends_at: Set(ends_at),
        reason: Set(reason),
        created_by: Set(caller.actor.clone()),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        caller,
        Event::new("alert_silence.create", "alert_silence", model.id).customer(owner).details(json!({
            "scope": model.scope, "customer_id": model.customer_id, "site_id": model.site_id,
            "metric": model.metric, "starts_at": model.starts_at, "ends_at": model.ends_at, "reason": model.reason,
        })),
    )
    .await?;
    txn.commit().await?;
    Ok(model)
}

/// The silences (admins only), the latest ending first; without `include_ended`, only those
/// still in force or yet to start.
pub async fn list(
    db: &impl ConnectionTrait,
    caller: &Caller,
    include_ended: bool,
) -> Result<Vec<alert_silences::Model>> {
    caller.require_admin()?;
    let mut q = alert_silences::Entity::find();
    if !include_ended {
        q = q.filter(alert_silences::Column::EndsAt.gt(super::now()));
    }
    Ok(q.order_by_desc(alert_silences::Column::EndsAt).order_by_desc(alert_silences::Column::Id).all(db).await?)
}

/// Ends a silence now (admins only), audited. The row stays, as history; a silence that has
/// already ended is left as it is.
pub async fn expire<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    id: Uuid,
) -> Result<alert_silences::Model> {
    caller.require_admin()?;
    let txn = db.begin().await?;
    let silence = alert_silences::Entity::find_by_id(id).one(&txn).await?.ok_or(Error::NotFound("alert silence"))?;
    let now = super::now();
    if silence.ends_at <= now {
        return Ok(silence);
    }
    let mut active: alert_silences::ActiveModel = silence.clone().into();
    active.ends_at = Set(now);
    // One that had not started yet never will.
    if silence.starts_at > now {
        active.starts_at = Set(now);
    }
    let updated = active.update(&txn).await?;
    audit::record(
        &txn,
        caller,
        Event::new("alert_silence.expire", "alert_silence", id)
            .customer(silence.customer_id)
            .details(json!({"was_ending_at": silence.ends_at})),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// The silence in force at `at` that covers an alert of `metric` on `site_id` (owned by
/// `customer_id`), if any: the one ending last.
pub async fn covering(
    db: &impl ConnectionTrait,
    site_id: Uuid,
    customer_id: Uuid,
    metric: &str,
    at: DateTime<Utc>,
) -> Result<Option<alert_silences::Model>> {
    use alert_silences::Column;
    Ok(alert_silences::Entity::find()
        .filter(Column::StartsAt.lte(at))
        .filter(Column::EndsAt.gt(at))
        .filter(Condition::any().add(Column::Metric.is_null()).add(Column::Metric.eq(metric)))
        .filter(
            Condition::any()
                .add(Column::Scope.eq("all"))
                .add(Condition::all().add(Column::Scope.eq("customer")).add(Column::CustomerId.eq(customer_id)))
                .add(Condition::all().add(Column::Scope.eq("site")).add(Column::SiteId.eq(site_id))),
        )
        .order_by_desc(Column::EndsAt)
        .one(db)
        .await?)
}

/// The timeline line of a notification a silence held back.
pub fn timeline_detail(s: &alert_silences::Model, transition: &str) -> String {
    let until = s.ends_at.format("%Y-%m-%d %H:%M UTC");
    let why = if s.reason.is_empty() { String::new() } else { format!(": {}", s.reason) };
    format!("{transition} notice not sent: silenced until {until} by {}{why}", s.created_by)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silence_is_in_force_from_its_start_until_its_end() {
        let now = Utc::now();
        let s = alert_silences::Model {
            id: Uuid::now_v7(),
            scope: "all".into(),
            customer_id: None,
            site_id: None,
            metric: None,
            starts_at: now,
            ends_at: now + Duration::hours(1),
            reason: "maintenance".into(),
            created_by: "admin@example.com".into(),
            created_at: now,
        };
        assert!(is_active(&s, now));
        assert!(is_active(&s, now + Duration::minutes(59)));
        assert!(!is_active(&s, now + Duration::hours(1)));
        assert!(!is_active(&s, now - Duration::seconds(1)));
        assert_eq!(
            timeline_detail(&s, "fired"),
            format!(
                "fired notice not sent: silenced until {} by admin@example.com: maintenance",
                (now + Duration::hours(1)).format("%Y-%m-%d %H:%M UTC")
            )
        );
    }
}
