//! The runtime's side of sites: the whole desired state in one read for the reconciler, the
//! observed state it writes back, the end of a deletion, and the routes the ingress serves.
//!
//! These act as Berth itself (no tenant scope): the reconciler converges every tenant's sites.
//! Only observed columns are written here; what owners set goes through [`super::sites`].

use std::collections::{BTreeMap, HashMap};

use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, Event};
use crate::access::Caller;
use crate::crypto::Keys;
use crate::entities::{customers, plans, site_domains, site_volumes, sites};
use crate::error::{Error, Result};
use crate::types::{CustomerStatus, SiteStatus};

/// One site as the reconciler needs it.
#[derive(Debug, Clone)]
pub struct DesiredSite {
    pub site: sites::Model,
    pub domains: Vec<String>,
    /// The opened environment, or why it could not be opened (the site then fails alone).
    pub env: std::result::Result<BTreeMap<String, String>, String>,
    pub customer_status: CustomerStatus,
    pub plan: Option<plans::Model>,
}

/// What the runtime saw of a site.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    pub status: Option<SiteStatus>,
    pub status_reason: Option<String>,
    pub container_id: Option<String>,
    pub address: Option<String>,
    pub health: Option<String>,
    pub restart_count: i32,
    pub last_error: Option<String>,
    pub spec_hash: Option<String>,
    pub failed_spec_hash: Option<String>,
    /// The image the serving container was made from.
    pub running_image: Option<String>,
}

impl Observed {
    /// The observed part of a stored row, to compare before writing.
    pub fn of(m: &sites::Model) -> Self {
        Self {
            status: Some(m.status),
            status_reason: m.status_reason.clone(),
            container_id: m.container_id.clone(),
            address: m.address.clone(),
            health: m.health.clone(),
            restart_count: m.restart_count,
            last_error: m.last_error.clone(),
            spec_hash: m.spec_hash.clone(),
            failed_spec_hash: m.failed_spec_hash.clone(),
            running_image: m.running_image.clone(),
        }
    }

    /// Sets the observed columns of `active` to this (the status only when one was seen).
    pub fn apply(&self, active: &mut sites::ActiveModel) {
        if let Some(status) = self.status {
            active.status = Set(status);
        }
        active.status_reason = Set(self.status_reason.clone());
        active.container_id = Set(self.container_id.clone());
        active.address = Set(self.address.clone());
        active.health = Set(self.health.clone());
        active.restart_count = Set(self.restart_count);
        active.last_error = Set(self.last_error.clone());
        active.spec_hash = Set(self.spec_hash.clone());
        active.failed_spec_hash = Set(self.failed_spec_hash.clone());
        active.running_image = Set(self.running_image.clone());
    }
}

/// Every site with its domains, environment, customer status and plan.
pub async fn desired_all(db: &impl ConnectionTrait, keys: &Keys) -> Result<Vec<DesiredSite>> {
    let rows = sites::Entity::find().order_by_asc(sites::Column::Id).all(db).await?;
    let customers: HashMap<Uuid, customers::Model> =
        customers::Entity::find().all(db).await?.into_iter().map(|c| (c.id, c)).collect();
    let plans: HashMap<String, plans::Model> =
        plans::Entity::find().all(db).await?.into_iter().map(|p| (p.id.clone(), p)).collect();
    let mut domains = super::sites::domains_of(db, None).await?;
    Ok(rows
        .into_iter()
        .map(|site| {
            let customer = customers.get(&site.customer_id);
            let env = super::sites::open_env(keys, &site).map_err(|e| format!("cannot open the environment: {e}"));
            DesiredSite {
                domains: domains.remove(&site.id).unwrap_or_default(),
                env,
                // A site without its customer row would be a data bug: treat it as suspended.
                customer_status: customer.map_or(CustomerStatus::Suspended, |c| c.status),
                plan: customer.and_then(|c| plans.get(&c.plan_id).cloned()),
                site,
            }
        })
        .collect())
}

/// One site as the reconciler sees it (Berth itself: no tenant scope; the caller checked it).
pub async fn desired_one(db: &impl ConnectionTrait, keys: &Keys, id: Uuid) -> Result<DesiredSite> {
    let site = sites::Entity::find_by_id(id).one(db).await?.ok_or(Error::NotFound("site"))?;
    let customer = customers::Entity::find_by_id(site.customer_id).one(db).await?;
    let plan = match &customer {
        Some(c) => plans::Entity::find_by_id(c.plan_id.clone()).one(db).await?,
        None => None,
    };
    let domains = super::sites::domains_of(db, Some(&[id])).await?.remove(&id).unwrap_or_default();
    let env = super::sites::open_env(keys, &site).map_err(|e| format!("cannot open the environment: {e}"));
    Ok(DesiredSite {
        domains,
        env,
        customer_status: customer.map_or(CustomerStatus::Suspended, |c| c.status),
        plan,
        site,
    })
}

/// Writes the observed state when it differs from the stored one; returns whether it did.
pub async fn record(db: &impl ConnectionTrait, current: &sites::Model, observed: &Observed) -> Result<bool> {
    if Observed::of(current) == *observed {
        return Ok(false);
    }
    let mut active: sites::ActiveModel = current.clone().into();
    observed.apply(&mut active);
    active.observed_at = Set(Some(super::now()));
    // Only touch a row that is still what we read: an owner's change in between wins, and the
    // next pass observes again.
    let res = sites::Entity::update_many()
        .set(active)
        .filter(sites::Column::Id.eq(current.id))
        .filter(sites::Column::UpdatedAt.eq(current.updated_at))
        .filter(sites::Column::Status.eq(current.status))
        .exec(db)
        .await?;
    Ok(res.rows_affected > 0)
}

/// Removes a site whose deletion the runtime has carried out.
pub async fn finish_delete<C: ConnectionTrait + TransactionTrait>(db: &C, site: &sites::Model) -> Result<()> {
    let txn = db.begin().await?;
    let still = sites::Entity::find_by_id(site.id).one(&txn).await?;
    match still {
        Some(m) if m.status == SiteStatus::Deleting => {}
        Some(_) => return Err(Error::Conflict("the site is no longer being deleted".into())),
        None => return Ok(()),
    }
    site_domains::Entity::delete_many().filter(site_domains::Column::SiteId.eq(site.id)).exec(&txn).await?;
    if site.purge_volume {
        // The runtime removed every volume of the site, the retired ones included.
        site_volumes::Entity::update_many()
            .col_expr(site_volumes::Column::DiscardedAt, sea_orm::sea_query::Expr::value(super::now()))
            .filter(site_volumes::Column::SiteId.eq(site.id))
            .filter(site_volumes::Column::DiscardedAt.is_null())
            .exec(&txn)
            .await?;
    }
    sites::Entity::delete_by_id(site.id).exec(&txn).await?;
    audit::record(
        &txn,
        &Caller::system("reconciler"),
        Event::new("site.deleted", "site", site.id)
            .customer(Some(site.customer_id))
            .details(json!({"name": site.name, "volume_purged": site.purge_volume})),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// One routed site: its host names and where its container listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub site_id: Uuid,
    pub domains: Vec<String>,
    pub address: String,
}

/// The sites the ingress serves: running, with an address and at least one domain, and an
/// active customer. Sorted by site id, so the same state renders the same configuration.
pub async fn routes(db: &impl ConnectionTrait) -> Result<Vec<Route>> {
    let rows = sites::Entity::find()
        .filter(sites::Column::Status.eq(SiteStatus::Running))
        .filter(sites::Column::Address.is_not_null())
        .order_by_asc(sites::Column::Id)
        .all(db)
        .await?;
    let active: std::collections::HashSet<Uuid> = customers::Entity::find()
        .filter(customers::Column::Status.eq(CustomerStatus::Active))
        .all(db)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut domains = super::sites::domains_of(db, Some(&ids)).await?;
    Ok(rows
        .into_iter()
        .filter(|r| active.contains(&r.customer_id))
        .filter_map(|r| {
            let domains = domains.remove(&r.id).filter(|d| !d.is_empty())?;
            Some(Route { site_id: r.id, domains, address: r.address? })
        })
        .collect())
}
