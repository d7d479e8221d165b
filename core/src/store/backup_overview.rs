//! What the console's backup overview (`/admin/backups`) reads: every site's last good backup,
//! the recent failures with their errors, and the storage each customer's backups added per
//! target. Admin-only ([`Caller::require_admin`]); a few grouped queries whatever the number of
//! sites or backups, never one per site.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveEnum, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement};
use uuid::Uuid;

use super::metrics::placeholders;
use crate::access::Caller;
use crate::entities::{backups, customers, sites};
use crate::error::Result;
use crate::types::{BackupKind, BackupStatus, SiteStatus};

/// One site and its newest succeeded (verified) backup, if it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteLastGood {
    pub site_id: Uuid,
    pub site_name: String,
    pub site_status: SiteStatus,
    pub customer_id: Uuid,
    pub company_name: String,
    /// When the newest good backup was asked for, its kind and size.
    pub last_good: Option<LastGood>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LastGood {
    pub backup_id: Uuid,
    pub at: DateTime<Utc>,
    pub kind: BackupKind,
    pub size_bytes: Option<i64>,
}

/// A failed backup, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub backup: backups::Model,
    /// `None` when the site no longer exists (a backup outlives its site).
    pub site_name: Option<String>,
    pub company_name: Option<String>,
}

/// What one customer's backups stored on one target: the sum of what each succeeded backup
/// added to the repository after de-duplication and compression (pruning is not subtracted).
#[derive(Debug, Clone, PartialEq)]
pub struct Storage {
    pub customer_id: Uuid,
    pub company_name: String,
    pub target: String,
    pub added_bytes: i64,
    pub backups: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Overview {
    /// Every site (but those being deleted): sites without a good backup first, then the
    /// oldest last good backup first, so what needs attention is at the top.
    pub sites: Vec<SiteLastGood>,
    pub failures: Vec<Failure>,
    /// By company name, then target.
    pub storage: Vec<Storage>,
}

/// The overview, with at most `failures` recent failures.
pub async fn overview(db: &impl ConnectionTrait, caller: &Caller, failures: u64) -> Result<Overview> {
    caller.require_admin()?;
    let backend = db.get_database_backend();
    let succeeded = BackupStatus::Succeeded.to_value();

    let names: HashMap<Uuid, String> = customers::Entity::find()
        .select_only()
        .column(customers::Column::Id)
        .column(customers::Column::CompanyName)
        .into_tuple::<(Uuid, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let all_sites = sites::Entity::find().order_by_asc(sites::Column::Name).all(db).await?;
    let site_names: HashMap<Uuid, String> = all_sites.iter().map(|s| (s.id, s.name.clone())).collect();

    // The newest succeeded row of each site, in one query: the (site, newest time) pairs joined
    // back to their rows.
    let sql = "SELECT b.id, b.site_id, b.created_at, b.kind, b.size_bytes FROM backups b \
               JOIN (SELECT site_id, MAX(created_at) AS last_at FROM backups WHERE status = $1 GROUP BY site_id) l \
                 ON l.site_id = b.site_id AND l.last_at = b.created_at \
               WHERE b.status = $2";
    let rows = db
        .query_all(Statement::from_sql_and_values(
            backend,
            placeholders(backend, sql),
            [succeeded.clone().into(), succeeded.clone().into()],
        ))
        .await?;
    let mut last: HashMap<Uuid, LastGood> = HashMap::new();
    for row in rows {
        let site_id: Uuid = row.try_get("", "site_id")?;
        let kind: String = row.try_get("", "kind")?;
        let good = LastGood {
            backup_id: row.try_get("", "id")?,
            at: row.try_get("", "created_at")?,
            // An unknown kind would be a newer Berth's row; it is still a good backup.
            kind: BackupKind::try_from_value(&kind).unwrap_or(BackupKind::Manual),
            size_bytes: row.try_get("", "size_bytes")?,
        };
        // Two rows at the same instant: either is the site's last good backup.
        last.entry(site_id).or_insert(good);
    }
    let mut sites: Vec<SiteLastGood> = all_sites
        .into_iter()
        .filter(|s| s.status != SiteStatus::Deleting)
        .map(|s| SiteLastGood {
            company_name: names.get(&s.customer_id).cloned().unwrap_or_default(),
            last_good: last.remove(&s.id),
            site_id: s.id,
            site_name: s.name,
            site_status: s.status,
            customer_id: s.customer_id,
        })
        .collect();
    // Never backed up first, then oldest first; the sort is stable, so names stay in order.
    sites.sort_by_key(|s| s.last_good.as_ref().map(|g| g.at));

    let failures = backups::Entity::find()
        .filter(backups::Column::Status.eq(BackupStatus::Failed))
        .order_by_desc(backups::Column::CreatedAt)
        .limit(failures)
        .all(db)
        .await?
        .into_iter()
        .map(|b| Failure {
            site_name: site_names.get(&b.site_id).cloned(),
            company_name: names.get(&b.customer_id).cloned(),
            backup: b,
        })
        .collect();

    // PostgreSQL sums a bigint as numeric: cast back, so both databases answer a 64-bit integer.
    let sql = "SELECT customer_id, target, CAST(COALESCE(SUM(added_bytes), 0) AS BIGINT) AS added, \
               COUNT(*) AS n FROM backups WHERE status = $1 GROUP BY customer_id, target";
    let rows =
        db.query_all(Statement::from_sql_and_values(backend, placeholders(backend, sql), [succeeded.into()])).await?;
    let mut storage = Vec::with_capacity(rows.len());
    for row in rows {
        let customer_id: Uuid = row.try_get("", "customer_id")?;
        storage.push(Storage {
            company_name: names.get(&customer_id).cloned().unwrap_or_default(),
            customer_id,
            target: row.try_get("", "target")?,
            added_bytes: row.try_get("", "added")?,
            backups: row.try_get("", "n")?,
        });
    }
    storage.sort_by(|a, b| (&a.company_name, &a.target).cmp(&(&b.company_name, &b.target)));
    Ok(Overview { sites, failures, storage })
}
