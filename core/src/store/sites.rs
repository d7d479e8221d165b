//! Sites: the desired state of each customer website. Every value here will later reach
//! Docker, nginx or DNS, so all of it is validated before it is stored.

use std::collections::{BTreeMap, HashMap};

use sea_orm::{
    ActiveEnum, ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, Event};
use super::page::{self, Page, Paged};
use super::site_state::Observed;
use super::{contains_ci, plans};
use crate::access::{self, Caller};
use crate::crypto::Keys;
use crate::entities::{customers as customer_entity, site_domains, sites};
use crate::error::{Error, Fields, Result};
use crate::types::{CustomerStatus, DesiredState, SiteStatus};
use crate::validate;

/// The image a site runs when none is named: the static site image built by Berth.
pub const DEFAULT_IMAGE: &str = "berth/site-static:latest";
pub const MAX_DOMAINS: usize = 20;
pub const MAX_ENV: usize = 100;

/// A site with its domains and (opened) environment.
#[derive(Debug, Clone)]
pub struct Site {
    pub model: sites::Model,
    pub domains: Vec<String>,
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub customer_id: Option<Uuid>,
    pub status: Option<SiteStatus>,
    /// Matches the site name, case-insensitively.
    pub q: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct NewSite {
    /// Required for admins; customer users may omit it (their own customer is used).
    pub customer_id: Option<Uuid>,
    pub name: String,
    pub image: Option<String>,
    pub domains: Vec<String>,
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct Patch {
    pub image: Option<String>,
    pub domains: Option<Vec<String>>,
    pub env: Option<BTreeMap<String, String>>,
    pub desired_state: Option<DesiredState>,
    /// Let the container run as root when its image says so; admins only.
    pub allow_root: Option<bool>,
}

fn env_context(site_id: Uuid) -> String {
    format!("site-env:{site_id}")
}

fn seal_env(keys: &Keys, site_id: Uuid, env: &BTreeMap<String, String>) -> Result<String> {
    let plain = serde_json::to_vec(env).map_err(|e| Error::Internal(e.into()))?;
    Ok(keys.seal(&env_context(site_id), &plain))
}

pub(crate) fn open_env(keys: &Keys, site: &sites::Model) -> Result<BTreeMap<String, String>> {
    let plain = keys.open(&env_context(site.id), &site.env).map_err(|e| Error::Internal(e.into()))?;
    serde_json::from_slice(&plain).map_err(|e| Error::Internal(e.into()))
}

pub(crate) fn check_domains(fields: &mut Fields, domains: &[String]) -> Vec<String> {
    if domains.len() > MAX_DOMAINS {
        fields.push("domains", format!("at most {MAX_DOMAINS} domains per site"));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, d) in domains.iter().enumerate() {
        if let Some(ascii) = fields.check(&format!("domains[{i}]"), validate::domain(d)) {
            if out.contains(&ascii) {
                fields.push(format!("domains[{i}]"), "is listed twice");
            } else {
                out.push(ascii);
            }
        }
    }
    out
}

fn check_env(fields: &mut Fields, env: &BTreeMap<String, String>) {
    if env.len() > MAX_ENV {
        fields.push("env", format!("at most {MAX_ENV} variables per site"));
    }
    for (k, v) in env {
        fields.check(&format!("env.{k}"), validate::env_key(k));
        fields.check(&format!("env.{k}"), validate::env_value(v));
    }
}

/// The domains of the sites `ids` (of every site with `None`), in their stored order.
pub(crate) async fn domains_of(db: &impl ConnectionTrait, ids: Option<&[Uuid]>) -> Result<HashMap<Uuid, Vec<String>>> {
    let mut map: HashMap<Uuid, Vec<String>> = HashMap::new();
    let mut query = site_domains::Entity::find().order_by_asc(site_domains::Column::Position);
    if let Some(ids) = ids {
        if ids.is_empty() {
            return Ok(map);
        }
        query = query.filter(site_domains::Column::SiteId.is_in(ids.iter().copied()));
    }
    for row in query.all(db).await? {
        map.entry(row.site_id).or_default().push(row.domain);
    }
    Ok(map)
}

/// Stores a site's domains, reporting a domain owned by any other site as a conflict.
async fn store_domains(db: &impl ConnectionTrait, site_id: Uuid, domains: &[String]) -> Result<()> {
    if !domains.is_empty() {
        let taken = site_domains::Entity::find()
            .filter(site_domains::Column::Domain.is_in(domains.iter().cloned()))
            .filter(site_domains::Column::SiteId.ne(site_id))
            .one(db)
            .await?;
        if let Some(row) = taken {
            return Err(Error::Conflict(format!("domain {} is already in use", row.domain)));
        }
    }
    site_domains::Entity::delete_many().filter(site_domains::Column::SiteId.eq(site_id)).exec(db).await?;
    let now = super::now();
    for (i, d) in domains.iter().enumerate() {
        site_domains::ActiveModel {
            domain: Set(d.clone()),
            site_id: Set(site_id),
            position: Set(i as i32),
            created_at: Set(now),
        }
        .insert(db)
        .await
        .map_err(|e| crate::error::conflict_on_unique(e, &format!("domain {d} is already in use")))?;
    }
    Ok(())
}

pub async fn list(db: &impl ConnectionTrait, caller: &Caller, filter: Filter, page: Page) -> Result<Paged<Site>> {
    let mut q = access::sites(caller);
    if let Some(c) = filter.customer_id {
        q = q.filter(sites::Column::CustomerId.eq(c));
    }
    if let Some(s) = filter.status {
        q = q.filter(sites::Column::Status.eq(s));
    }
    if let Some(needle) = filter.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        q = q.filter(contains_ci(sites::Column::Name, needle));
    }
    let paged = page::fetch(db, q, sites::Column::Id, page, |m| m.id).await?;
    let ids: Vec<Uuid> = paged.items.iter().map(|s| s.id).collect();
    let mut domains = domains_of(db, Some(&ids)).await?;
    // Lists leave the environment out: it is secret, and a list has no need for it.
    Ok(paged.map(|model| Site { domains: domains.remove(&model.id).unwrap_or_default(), env: BTreeMap::new(), model }))
}

/// The site's domains in their stored order as one space-separated column of the site's own
/// row, so a single-site read is one round trip. A space cannot occur in a stored domain
/// (`validate::domain` allows letters, digits, hyphens and dots only).
fn domains_column(backend: sea_orm::DbBackend) -> sea_orm::sea_query::SimpleExpr {
    let sql = match backend {
        sea_orm::DbBackend::Postgres => {
            "(SELECT string_agg(d.domain, ' ' ORDER BY d.position) FROM site_domains d WHERE d.site_id = sites.id)"
        }
        // SQLite's group_concat keeps the order of its input rows.
        _ => {
            "(SELECT group_concat(domain, ' ') FROM \
             (SELECT d.domain FROM site_domains d WHERE d.site_id = sites.id ORDER BY d.position))"
        }
    };
    sea_orm::sea_query::Expr::cust(sql)
}

pub async fn get(db: &impl ConnectionTrait, keys: &Keys, caller: &Caller, id: Uuid) -> Result<Site> {
    let backend = db.get_database_backend();
    let query = access::sites(caller).filter(sites::Column::Id.eq(id)).expr_as(domains_column(backend), "domains");
    let row = db.query_one(query.build(backend)).await?.ok_or(Error::NotFound("site"))?;
    let model = <sites::Model as sea_orm::FromQueryResult>::from_query_result(&row, "")?;
    let domains: Option<String> = row.try_get("", "domains")?;
    let domains = domains.map(|d| d.split(' ').map(str::to_owned).collect()).unwrap_or_default();
    let env = open_env(keys, &model)?;
    Ok(Site { model, domains, env })
}

/// The row of a new site (desired: running; nothing observed yet), its environment sealed.
/// Validation and the plan limit are the caller's: [`create`], or the signup intake.
pub(crate) fn new_row(
    keys: &Keys,
    id: Uuid,
    customer_id: Uuid,
    name: String,
    image: String,
    env: &BTreeMap<String, String>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<sites::ActiveModel> {
    let mut model = sites::ActiveModel {
        id: Set(id),
        customer_id: Set(customer_id),
        name: Set(name),
        image: Set(image),
        env: Set(seal_env(keys, id, env)?),
        desired_state: Set(DesiredState::Running),
        observed_at: Set(None),
        purge_volume: Set(false),
        allow_root: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    // Nothing observed yet: the observed columns start from their one definition.
    Observed { status: Some(SiteStatus::Pending), ..Observed::default() }.apply(&mut model);
    Ok(model)
}

pub async fn create<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    keys: &Keys,
    caller: &Caller,
    new: NewSite,
) -> Result<Site> {
    let mut fields = Fields::new();
    let customer_id = match (caller.own_customer(), new.customer_id) {
        (Some(own), _) => Some(new.customer_id.unwrap_or(own)),
        (None, Some(c)) => Some(c),
        (None, None) => {
            fields.push("customer_id", "is required");
            None
        }
    };
    fields.check("name", validate::site_name(&new.name));
    let image = new.image.clone().unwrap_or_else(|| DEFAULT_IMAGE.to_owned());
    fields.check("image", validate::image_ref(&image));
    let domains = check_domains(&mut fields, &new.domains);
    check_env(&mut fields, &new.env);
    fields.finish()?;
    let Some(customer_id) = customer_id else {
        return Err(Error::invalid("customer_id", "is required"));
    };

    let txn = db.begin().await?;
    // The scoped lookup answers 404 for another tenant's customer id, whoever sent it. The row
    // lock serialises concurrent creations for one customer, so the plan limit holds.
    let customer = access::customers(caller)
        .filter(customer_entity::Column::Id.eq(customer_id))
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(Error::NotFound("customer"))?;
    if customer.status != CustomerStatus::Active {
        return Err(Error::Conflict(format!(
            "customer is {}; new sites need an active customer",
            customer.status.to_value()
        )));
    }
    let plan = plans::find(&txn, &customer.plan_id).await?.ok_or(Error::NotFound("plan"))?;
    let count = sites::Entity::find().filter(sites::Column::CustomerId.eq(customer_id)).count(&txn).await?;
    if count >= plan.max_sites as u64 {
        return Err(Error::invalid(
            "customer_id",
            format!("plan `{}` allows at most {} site(s); this customer has {count}", plan.id, plan.max_sites),
        ));
    }
    let taken = sites::Entity::find()
        .filter(sites::Column::CustomerId.eq(customer_id))
        .filter(sites::Column::Name.eq(new.name.clone()))
        .one(&txn)
        .await?;
    if taken.is_some() {
        return Err(Error::Conflict(format!("this customer already has a site named {}", new.name)));
    }

    let id = Uuid::now_v7();
    let model = new_row(keys, id, customer_id, new.name.clone(), image, &new.env, super::now())?;
    let model = model
        .insert(&txn)
        .await
        .map_err(|e| crate::error::conflict_on_unique(e, "this customer already has a site with that name"))?;
    store_domains(&txn, id, &domains).await?;
    audit::record(
        &txn,
        caller,
        Event::new("site.create", "site", id)
            .customer(Some(customer_id))
            .details(json!({"name": model.name, "image": model.image, "domains": domains})),
    )
    .await?;
    txn.commit().await?;
    Ok(Site { model, domains, env: new.env })
}

pub async fn update<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    keys: &Keys,
    caller: &Caller,
    id: Uuid,
    patch: Patch,
) -> Result<Site> {
    let mut fields = Fields::new();
    if let Some(image) = &patch.image {
        fields.check("image", validate::image_ref(image));
    }
    let domains = patch.domains.as_ref().map(|d| check_domains(&mut fields, d));
    if let Some(env) = &patch.env {
        check_env(&mut fields, env);
    }
    fields.finish()?;
    // Running as root is the platform's risk, not the tenant's to take: only admins decide.
    if patch.allow_root.is_some() {
        caller.require_admin()?;
    }

    let txn = db.begin().await?;
    let current = get(&txn, keys, caller, id).await?;
    refuse_if_deleting(&current.model)?;
    let mut changes = serde_json::Map::new();
    let mut active: sites::ActiveModel = current.model.clone().into();
    if let Some(image) = patch.image.filter(|i| *i != current.model.image) {
        changes.insert("image".into(), json!({"from": current.model.image, "to": image}));
        active.image = Set(image);
    }
    if let Some(state) = patch.desired_state.filter(|s| *s != current.model.desired_state) {
        changes.insert("desired_state".into(), json!({"from": current.model.desired_state, "to": state}));
        active.desired_state = Set(state);
    }
    if let Some(allow) = patch.allow_root.filter(|a| *a != current.model.allow_root) {
        changes.insert("allow_root".into(), json!({"from": current.model.allow_root, "to": allow}));
        active.allow_root = Set(allow);
    }
    let env = match patch.env {
        Some(env) if env != current.env => {
            // Names only: values are secret and the audit log is not.
            changes.insert("env".into(), json!({"keys": env.keys().collect::<Vec<_>>()}));
            active.env = Set(seal_env(keys, id, &env)?);
            env
        }
        _ => current.env.clone(),
    };
    let domains = match domains {
        Some(d) if d != current.domains => {
            changes.insert("domains".into(), json!({"from": current.domains, "to": d}));
            store_domains(&txn, id, &d).await?;
            d
        }
        _ => current.domains.clone(),
    };
    if changes.is_empty() {
        txn.commit().await?;
        return Ok(current);
    }
    // A changed specification gets a fresh replacement attempt, even one that failed before.
    active.failed_spec_hash = Set(None);
    active.updated_at = Set(super::now());
    let model = active.update(&txn).await?;
    audit::record(
        &txn,
        caller,
        Event::new("site.update", "site", id).customer(Some(model.customer_id)).details(changes.into()),
    )
    .await?;
    txn.commit().await?;
    Ok(Site { model, domains, env })
}

/// Who completes a deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The reconciler removes the container (and volume), then the row.
    ByReconciler,
    /// At once, in the same transaction: without a container runtime there is nothing to remove
    /// and nothing else would ever finish it.
    Now,
}

/// Deletes a site: it leaves the ingress at once and is completed as `completion` says (with
/// `purge`, its data volume goes too). Deleting twice is one deletion.
pub async fn delete<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    id: Uuid,
    purge: bool,
    completion: Completion,
) -> Result<()> {
    let txn = db.begin().await?;
    let model = access::sites(caller)
        .filter(sites::Column::Id.eq(id))
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(Error::NotFound("site"))?;
    if model.status == SiteStatus::Deleting && (model.purge_volume || !purge) {
        if completion == Completion::Now {
            super::site_state::finish_delete(&txn, &model).await?;
        }
        txn.commit().await?;
        return Ok(());
    }
    let customer_id = model.customer_id;
    let name = model.name.clone();
    let mut active: sites::ActiveModel = model.into();
    active.status = Set(SiteStatus::Deleting);
    active.status_reason = Set(Some("deletion requested".into()));
    active.desired_state = Set(DesiredState::Stopped);
    active.purge_volume = Set(purge);
    active.updated_at = Set(super::now());
    let model = active.update(&txn).await?;
    audit::record(
        &txn,
        caller,
        Event::new("site.delete", "site", id)
            .customer(Some(customer_id))
            .details(json!({"name": name, "purge": purge})),
    )
    .await?;
    if completion == Completion::Now {
        super::site_state::finish_delete(&txn, &model).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Sets what the owner wants the site to be doing (the start and stop actions), audited as
/// `site.start` / `site.stop` even when it already was so: the request itself is the event.
pub async fn set_desired<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    keys: &Keys,
    caller: &Caller,
    id: Uuid,
    state: DesiredState,
) -> Result<Site> {
    let txn = db.begin().await?;
    let current = get(&txn, keys, caller, id).await?;
    refuse_if_deleting(&current.model)?;
    let mut active: sites::ActiveModel = current.model.clone().into();
    active.desired_state = Set(state);
    active.updated_at = Set(super::now());
    let model = active.update(&txn).await?;
    let action = match state {
        DesiredState::Running => "site.start",
        DesiredState::Stopped => "site.stop",
    };
    audit::record(
        &txn,
        caller,
        Event::new(action, "site", id)
            .customer(Some(model.customer_id))
            .details(json!({"from": current.model.desired_state, "to": state})),
    )
    .await?;
    txn.commit().await?;
    Ok(Site { model, domains: current.domains, env: current.env })
}

/// Records an imperative action on a site (a restart) in the audit log, after the caller's
/// scope let it see the site.
pub async fn record_action(
    db: &impl ConnectionTrait,
    caller: &Caller,
    site: &sites::Model,
    action: &'static str,
) -> Result<()> {
    audit::record(db, caller, Event::new(action, "site", site.id).customer(Some(site.customer_id))).await
}

fn refuse_if_deleting(model: &sites::Model) -> Result<()> {
    if model.status == SiteStatus::Deleting {
        return Err(Error::Conflict("the site is being deleted".into()));
    }
    Ok(())
}

/// Counts by status, for dashboards and metrics.
pub async fn count_by_status(db: &impl ConnectionTrait, caller: &Caller) -> Result<Vec<(SiteStatus, u64)>> {
    let rows: Vec<(SiteStatus, i64)> = access::sites(caller)
        .select_only()
        .column(sites::Column::Status)
        .column_as(sites::Column::Id.count(), "n")
        .group_by(sites::Column::Status)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|(s, n)| (s, n.max(0) as u64)).collect())
}
