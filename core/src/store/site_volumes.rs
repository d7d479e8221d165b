//! A site's data volume, and the volumes it no longer uses.
//!
//! `sites.data_volume` names the volume a site's container mounts (`None`: the default name,
//! which only the runtime knows). A switch onto a fresh volume is a compare-and-set on that
//! column ([`switch`]), so two switches cannot interleave; the volume given up is recorded in
//! `site_volumes` ([`retire`]) and kept until an operator discards it or its `keep_until`
//! passes (the housekeeping job). Nothing here touches Docker: `berth_ops::volumes` does, and
//! calls these around it.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, Event};
use crate::access::{self, Caller};
use crate::entities::{site_volumes, sites};
use crate::error::{Error, Result};
use crate::types::SiteStatus;

/// The site's data was replaced by a restore; this volume holds what it had before.
pub const REPLACED_BY_RESTORE: &str = "replaced_by_restore";
/// A fresh volume the site was to switch onto, whose replacement container did not become
/// healthy: the site went back to its volume, and this one is kept for inspection.
pub const FAILED_SWITCH: &str = "failed_switch";

/// Loads a site the caller may see, for a volume operation (not one being deleted).
pub async fn site(db: &impl ConnectionTrait, caller: &Caller, site_id: Uuid) -> Result<sites::Model> {
    let site =
        access::sites(caller).filter(sites::Column::Id.eq(site_id)).one(db).await?.ok_or(Error::NotFound("site"))?;
    if site.status == SiteStatus::Deleting {
        return Err(Error::Conflict("the site is being deleted".into()));
    }
    Ok(site)
}

/// Points the site at volume `to`, if it still uses `from` (`None` for either: the default
/// volume). A rollback is the same call the other way round. Done already (it uses `to`) is
/// success; another volume is a conflict (another switch won).
/// Audited as `site.volume_switch` in the same transaction.
pub async fn switch<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    site_id: Uuid,
    from: Option<&str>,
    to: Option<&str>,
    reason: &str,
) -> Result<sites::Model> {
    let txn = db.begin().await?;
    let current = access::sites(caller)
        .filter(sites::Column::Id.eq(site_id))
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(Error::NotFound("site"))?;
    if current.data_volume.as_deref() == to {
        txn.commit().await?;
        return Ok(current);
    }
    if current.status == SiteStatus::Deleting {
        return Err(Error::Conflict("the site is being deleted".into()));
    }
    if current.data_volume.as_deref() != from {
        return Err(Error::Conflict("the site's data volume changed meanwhile (another restore?)".into()));
    }
    let customer_id = current.customer_id;
    let mut active: sites::ActiveModel = current.into();
    active.data_volume = Set(to.map(str::to_owned));
    // A new specification: the reconciler tries its replacement even if one failed before.
    active.failed_spec_hash = Set(None);
    active.updated_at = Set(super::now());
    let model = active.update(&txn).await?;
    audit::record(
        &txn,
        caller,
        Event::new("site.volume_switch", "site", site_id)
            .customer(Some(customer_id))
            .details(json!({"from": from, "to": to, "reason": reason})),
    )
    .await?;
    txn.commit().await?;
    Ok(model)
}

/// Records a volume the site no longer uses, kept until `keep_until`. Recording it twice is
/// one record (the first one stays).
pub async fn retire(
    db: &impl ConnectionTrait,
    site: &sites::Model,
    name: &str,
    reason: &str,
    keep_until: chrono::DateTime<chrono::Utc>,
) -> Result<site_volumes::Model> {
    if let Some(row) = site_volumes::Entity::find_by_id(name.to_owned()).one(db).await? {
        return Ok(row);
    }
    let row = site_volumes::ActiveModel {
        name: Set(name.to_owned()),
        site_id: Set(site.id),
        customer_id: Set(site.customer_id),
        reason: Set(reason.to_owned()),
        retired_at: Set(super::now()),
        keep_until: Set(keep_until),
        discarded_at: Set(None),
    };
    Ok(row.insert(db).await?)
}

/// The volumes a site no longer uses and that are still there, newest first.
pub async fn list(db: &impl ConnectionTrait, caller: &Caller, site_id: Uuid) -> Result<Vec<site_volumes::Model>> {
    // The site first: another tenant's site is not found, whatever volumes it has.
    access::sites(caller).filter(sites::Column::Id.eq(site_id)).one(db).await?.ok_or(Error::NotFound("site"))?;
    Ok(access::site_volumes(caller)
        .filter(site_volumes::Column::SiteId.eq(site_id))
        .filter(site_volumes::Column::DiscardedAt.is_null())
        .order_by_desc(site_volumes::Column::RetiredAt)
        .order_by_desc(site_volumes::Column::Name)
        .limit(500)
        .all(db)
        .await?)
}

/// One retired volume of a site the caller may see, not discarded yet.
pub async fn get(
    db: &impl ConnectionTrait,
    caller: &Caller,
    site_id: Uuid,
    name: &str,
) -> Result<(sites::Model, site_volumes::Model)> {
    let site =
        access::sites(caller).filter(sites::Column::Id.eq(site_id)).one(db).await?.ok_or(Error::NotFound("site"))?;
    let row = access::site_volumes(caller)
        .filter(site_volumes::Column::Name.eq(name))
        .filter(site_volumes::Column::SiteId.eq(site_id))
        .filter(site_volumes::Column::DiscardedAt.is_null())
        .one(db)
        .await?
        .ok_or(Error::NotFound("volume"))?;
    Ok((site, row))
}

/// Marks a retired volume removed (after the engine removed it), audited as
/// `site.volume_discard` with who did it (an operator, or housekeeping when its time was up).
pub async fn mark_discarded<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    row: &site_volumes::Model,
) -> Result<()> {
    let txn = db.begin().await?;
    let res = site_volumes::Entity::update_many()
        .col_expr(site_volumes::Column::DiscardedAt, sea_orm::sea_query::Expr::value(super::now()))
        .filter(site_volumes::Column::Name.eq(row.name.clone()))
        .filter(site_volumes::Column::DiscardedAt.is_null())
        .exec(&txn)
        .await?;
    if res.rows_affected > 0 {
        audit::record(
            &txn,
            caller,
            Event::new("site.volume_discard", "site", row.site_id)
                .customer(Some(row.customer_id))
                .details(json!({"volume": row.name, "reason": row.reason, "keep_until": row.keep_until})),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Retired volumes whose time is up (Berth itself: every tenant's), oldest first.
pub async fn expired(
    db: &impl ConnectionTrait,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<site_volumes::Model>> {
    Ok(site_volumes::Entity::find()
        .filter(site_volumes::Column::DiscardedAt.is_null())
        .filter(site_volumes::Column::KeepUntil.lt(now))
        .order_by_asc(site_volumes::Column::KeepUntil)
        .limit(200)
        .all(db)
        .await?)
}

/// Every retired volume of a site still there: a purging deletion removes them with the site.
pub async fn of_site(db: &impl ConnectionTrait, site_id: Uuid) -> Result<Vec<site_volumes::Model>> {
    Ok(site_volumes::Entity::find()
        .filter(site_volumes::Column::SiteId.eq(site_id))
        .filter(site_volumes::Column::DiscardedAt.is_null())
        .all(db)
        .await?)
}
