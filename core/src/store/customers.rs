//! Customers: admin-only records of who buys hosting.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QuerySelect, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, Event};
use super::page::{self, Page, Paged};
use super::{contains_ci, plans};
use crate::access::{self, Caller};
use crate::entities::{customers, sites};
use crate::error::{conflict_on_unique, Error, Fields, Result};
use crate::types::CustomerStatus;
use crate::validate;

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub status: Option<CustomerStatus>,
    pub plan: Option<String>,
    /// Matches e-mail or company name, case-insensitively.
    pub q: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewCustomer {
    pub email: String,
    pub company_name: String,
    pub plan: String,
}

#[derive(Debug, Default, Clone)]
pub struct Patch {
    pub company_name: Option<String>,
    pub plan: Option<String>,
    pub status: Option<CustomerStatus>,
}

const EMAIL_TAKEN: &str = "a customer with this e-mail already exists";

pub async fn list(
    db: &impl ConnectionTrait,
    caller: &Caller,
    filter: Filter,
    page: Page,
) -> Result<Paged<customers::Model>> {
    caller.require_admin()?;
    let mut q = access::customers(caller);
    if let Some(status) = filter.status {
        q = q.filter(customers::Column::Status.eq(status));
    }
    if let Some(plan) = filter.plan {
        q = q.filter(customers::Column::PlanId.eq(plan));
    }
    if let Some(needle) = filter.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        q = q.filter(
            Condition::any()
                .add(contains_ci(customers::Column::Email, needle))
                .add(contains_ci(customers::Column::CompanyName, needle)),
        );
    }
    page::fetch(db, q, customers::Column::Id, page, |m| m.id).await
}

/// Any caller may look up a customer they can see (customer users: their own).
pub async fn get(db: &impl ConnectionTrait, caller: &Caller, id: Uuid) -> Result<customers::Model> {
    access::customers(caller).filter(customers::Column::Id.eq(id)).one(db).await?.ok_or(Error::NotFound("customer"))
}

async fn check_plan(db: &impl ConnectionTrait, fields: &mut Fields, plan: &str) -> Result<()> {
    if plans::find(db, plan).await?.is_none() {
        fields.push("plan", format!("unknown plan `{plan}`"));
    }
    Ok(())
}

/// The row of a new, active customer; the values are the caller's to have validated.
pub(crate) fn new_row(
    id: Uuid,
    email: String,
    company_name: String,
    plan: String,
    now: chrono::DateTime<chrono::Utc>,
) -> customers::ActiveModel {
    customers::ActiveModel {
        id: Set(id),
        email: Set(email),
        company_name: Set(company_name),
        plan_id: Set(plan),
        status: Set(CustomerStatus::Active),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

pub async fn create<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    new: NewCustomer,
) -> Result<customers::Model> {
    caller.require_admin()?;
    let mut fields = Fields::new();
    let email = fields.check("email", validate::email(&new.email));
    let company = fields.check("company_name", validate::company_name(&new.company_name));
    check_plan(db, &mut fields, &new.plan).await?;
    fields.finish()?;
    let (Some(email), Some(company_name)) = (email, company) else {
        return Err(Error::invalid("email", "is invalid"));
    };

    let txn = db.begin().await?;
    let model = new_row(Uuid::now_v7(), email, company_name, new.plan, super::now())
        .insert(&txn)
        .await
        .map_err(|e| conflict_on_unique(e, EMAIL_TAKEN))?;
    audit::record(
        &txn,
        caller,
        Event::new("customer.create", "customer", model.id)
            .customer(Some(model.id))
            .details(json!({"email": model.email, "plan": model.plan_id})),
    )
    .await?;
    txn.commit().await?;
    Ok(model)
}

pub async fn update<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    id: Uuid,
    patch: Patch,
) -> Result<customers::Model> {
    caller.require_admin()?;
    let mut fields = Fields::new();
    let company = match &patch.company_name {
        Some(c) => fields.check("company_name", validate::company_name(c)),
        None => None,
    };
    if let Some(plan) = &patch.plan {
        check_plan(db, &mut fields, plan).await?;
    }
    fields.finish()?;

    let txn = db.begin().await?;
    let current = get(&txn, caller, id).await?;
    if let Some(plan) = &patch.plan {
        let limit = plans::find(&txn, plan).await?.map_or(0, |p| p.max_sites);
        let count = sites::Entity::find().filter(sites::Column::CustomerId.eq(id)).count(&txn).await?;
        if count > limit as u64 {
            return Err(Error::invalid(
                "plan",
                format!("plan `{plan}` allows at most {limit} sites and this customer has {count}"),
            ));
        }
    }
    let mut changes = serde_json::Map::new();
    let mut active: customers::ActiveModel = current.clone().into();
    if let Some(c) = company.filter(|c| *c != current.company_name) {
        changes.insert("company_name".into(), json!({"from": current.company_name, "to": c}));
        active.company_name = Set(c);
    }
    if let Some(p) = patch.plan.filter(|p| *p != current.plan_id) {
        changes.insert("plan".into(), json!({"from": current.plan_id, "to": p}));
        active.plan_id = Set(p);
    }
    if let Some(s) = patch.status.filter(|s| *s != current.status) {
        changes.insert("status".into(), json!({"from": current.status, "to": s}));
        active.status = Set(s);
    }
    if changes.is_empty() {
        txn.commit().await?;
        return Ok(current);
    }
    active.updated_at = Set(super::now());
    let model = active.update(&txn).await?;
    audit::record(
        &txn,
        caller,
        Event::new("customer.update", "customer", id).customer(Some(id)).details(changes.into()),
    )
    .await?;
    txn.commit().await?;
    Ok(model)
}

pub async fn delete<C: ConnectionTrait + TransactionTrait>(db: &C, caller: &Caller, id: Uuid) -> Result<()> {
    caller.require_admin()?;
    // The customer's users and their API tokens go with it (foreign keys, on delete cascade):
    // after the commit, this process stops accepting those tokens at once.
    let _forget = super::token_cache::Forget::customer(id);
    let txn = db.begin().await?;
    let current = get(&txn, caller, id).await?;
    let count = sites::Entity::find().filter(sites::Column::CustomerId.eq(id)).count(&txn).await?;
    if count > 0 {
        return Err(Error::Conflict(format!("customer still has {count} site(s); delete them first")));
    }
    customers::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(
        &txn,
        caller,
        Event::new("customer.delete", "customer", id)
            .customer(Some(id))
            .details(json!({"email": current.email, "company_name": current.company_name})),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Admin-only: how many customers are in each status, for the dashboard.
pub async fn count_by_status(db: &impl ConnectionTrait, caller: &Caller) -> Result<Vec<(CustomerStatus, u64)>> {
    caller.require_admin()?;
    let rows: Vec<(CustomerStatus, i64)> = access::customers(caller)
        .select_only()
        .column(customers::Column::Status)
        .column_as(customers::Column::Id.count(), "n")
        .group_by(customers::Column::Status)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|(s, n)| (s, n.max(0) as u64)).collect())
}

/// Admin-only: how many customers are on each plan (plan id), for the dashboard.
pub async fn count_by_plan(db: &impl ConnectionTrait, caller: &Caller) -> Result<Vec<(String, u64)>> {
    caller.require_admin()?;
    let rows: Vec<(String, i64)> = access::customers(caller)
        .select_only()
        .column(customers::Column::PlanId)
        .column_as(customers::Column::Id.count(), "n")
        .group_by(customers::Column::PlanId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|(p, n)| (p, n.max(0) as u64)).collect())
}
