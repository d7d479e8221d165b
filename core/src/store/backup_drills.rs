//! Restore drills: asking for one (admins; the `backup.drill` job and its audit entry in one
//! transaction), picking what to drill, recording each drill as it runs and ends, and the
//! tenant-scoped list. A customer user's list holds only their own sites' drills
//! (`access::backup_drills`); starting a drill is for administrators.

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, Event};
use super::page::{self, Page, Paged};
use crate::access::{self, Caller};
use crate::entities::{backup_drills, backups, sites};
use crate::error::{Error, Result};
use crate::jobs::backup::DrillBackups;
use crate::jobs::{self, Options};
use crate::types::{BackupStatus, DrillStatus, SiteStatus};

/// Queues a `backup.drill` job (of `site_id` alone, or of a random sample), with its audit
/// entry. Administrators only. Returns the job's id, `None` when the same drill is already
/// queued or running. A site without a verified backup has nothing to drill (409).
pub async fn request<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    site_id: Option<Uuid>,
) -> Result<Option<Uuid>> {
    caller.require_admin()?;
    let txn = db.begin().await?;
    let customer_id = match site_id {
        None => None,
        Some(id) => {
            let site = access::sites(caller)
                .filter(sites::Column::Id.eq(id))
                .one(&txn)
                .await?
                .ok_or(Error::NotFound("site"))?;
            if newest_good(&txn, Some(site.id)).await?.is_empty() {
                return Err(Error::Conflict(
                    "this site has no succeeded, verified backup to drill; back it up first".into(),
                ));
            }
            Some(site.customer_id)
        }
    };
    let options = Options { customer_id, ..Options::default() };
    let job_id = jobs::enqueue_with(&txn, &DrillBackups { site_id }, options).await?;
    let event = match site_id {
        Some(id) => Event::new("backup.drill_request", "site", id).customer(customer_id),
        None => Event::new("backup.drill_request", "backup_drills", "sample"),
    };
    audit::record(&txn, caller, event.details(json!({"site_id": site_id, "job_id": job_id}))).await?;
    txn.commit().await?;
    Ok(job_id)
}

/// The newest succeeded and verified backup of each site that still exists and is not being
/// deleted (of `site_id` alone when given): what a drill restores.
pub async fn newest_good(db: &impl ConnectionTrait, site_id: Option<Uuid>) -> Result<Vec<backups::Model>> {
    let good = || {
        let q = backups::Entity::find()
            .filter(backups::Column::Status.eq(BackupStatus::Succeeded))
            .filter(backups::Column::Verified.eq(true))
            .filter(backups::Column::SnapshotId.is_not_null());
        match site_id {
            Some(id) => q.filter(backups::Column::SiteId.eq(id)),
            None => q,
        }
    };
    // Each site's newest good backup time, one grouped read (PostgreSQL has no max(uuid)).
    let newest: HashMap<Uuid, chrono::DateTime<chrono::Utc>> = good()
        .select_only()
        .column(backups::Column::SiteId)
        .column_as(backups::Column::CreatedAt.max(), "newest")
        .group_by(backups::Column::SiteId)
        .into_tuple::<(Uuid, chrono::DateTime<chrono::Utc>)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    if newest.is_empty() {
        return Ok(Vec::new());
    }
    let live: HashSet<Uuid> = sites::Entity::find()
        .filter(sites::Column::Id.is_in(newest.keys().copied()))
        .filter(sites::Column::Status.ne(SiteStatus::Deleting))
        .all(db)
        .await?
        .into_iter()
        .map(|s| s.id)
        .collect();
    let Some(oldest) = newest.iter().filter(|(site, _)| live.contains(site)).map(|(_, at)| *at).min() else {
        return Ok(Vec::new());
    };
    // Every live site's newest good backup is at or after `oldest`; keep the newest per site
    // (by time, then id), never comparing a time read back for equality.
    let rows = good()
        .filter(backups::Column::SiteId.is_in(live.iter().copied()))
        .filter(backups::Column::CreatedAt.gte(oldest))
        .all(db)
        .await?;
    let mut out: HashMap<Uuid, backups::Model> = HashMap::new();
    for row in rows {
        match out.get(&row.site_id) {
            Some(kept) if (kept.created_at, kept.id) >= (row.created_at, row.id) => {}
            _ => {
                out.insert(row.site_id, row);
            }
        }
    }
    let mut out: Vec<backups::Model> = out.into_values().collect();
    out.sort_by_key(|b| b.site_id);
    Ok(out)
}

/// Records a drill of `backup` as `running` (Berth acting for itself).
pub async fn start(db: &impl ConnectionTrait, backup: &backups::Model) -> Result<backup_drills::Model> {
    Ok(backup_drills::ActiveModel {
        id: Set(Uuid::now_v7()),
        site_id: Set(backup.site_id),
        customer_id: Set(backup.customer_id),
        backup_id: Set(backup.id),
        status: Set(DrillStatus::Running),
        files: Set(None),
        bytes: Set(None),
        mismatches: Set(None),
        error: Set(None),
        started_at: Set(super::now()),
        finished_at: Set(None),
    }
    .insert(db)
    .await?)
}

/// What a finished drill found. `error` is set exactly when it failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finding {
    pub files: Option<u64>,
    pub bytes: Option<u64>,
    pub mismatches: Option<u64>,
    pub error: Option<String>,
}

/// Records how a drill ended: `passed` without an error, `failed` with one.
pub async fn finish(db: &impl ConnectionTrait, drill_id: Uuid, finding: Finding) -> Result<backup_drills::Model> {
    let row = backup_drills::Entity::find_by_id(drill_id).one(db).await?.ok_or(Error::NotFound("drill"))?;
    let count = |n: Option<u64>| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    let mut active: backup_drills::ActiveModel = row.into();
    active.status = Set(if finding.error.is_some() { DrillStatus::Failed } else { DrillStatus::Passed });
    active.files = Set(count(finding.files));
    active.bytes = Set(count(finding.bytes));
    active.mismatches = Set(count(finding.mismatches));
    active.error = Set(finding.error.map(|e| shorten(&e, 2000)));
    active.finished_at = Set(Some(super::now()));
    Ok(active.update(db).await?)
}

/// Marks drills still `running` that started before `before` as failed: their worker died
/// half-way (a drill's scratch objects expire at the same age and are swept then).
pub async fn interrupt_stale(db: &impl ConnectionTrait, before: chrono::DateTime<chrono::Utc>) -> Result<u64> {
    use sea_orm::sea_query::Expr;
    let res = backup_drills::Entity::update_many()
        .col_expr(backup_drills::Column::Status, Expr::value(DrillStatus::Failed))
        .col_expr(
            backup_drills::Column::Error,
            Expr::value("the drill was interrupted (its worker stopped) before it finished"),
        )
        .col_expr(backup_drills::Column::FinishedAt, Expr::value(super::now()))
        .filter(backup_drills::Column::Status.eq(DrillStatus::Running))
        .filter(backup_drills::Column::StartedAt.lt(before))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// The ids of drills still `running`: their scratch objects are not leftovers.
pub async fn running(db: &impl ConnectionTrait) -> Result<HashSet<Uuid>> {
    Ok(backup_drills::Entity::find()
        .select_only()
        .column(backup_drills::Column::Id)
        .filter(backup_drills::Column::Status.eq(DrillStatus::Running))
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// The sites whose newest finished drill failed: what the `backup_check` alert reads besides
/// the repositories' integrity checks. A later passing drill of the site clears it.
pub async fn failing_sites(db: &impl ConnectionTrait) -> Result<HashSet<Uuid>> {
    let sql = "SELECT d.site_id FROM backup_drills d \
               WHERE d.status = 'failed' AND NOT EXISTS (SELECT 1 FROM backup_drills e \
               WHERE e.site_id = d.site_id AND e.status <> 'running' AND e.started_at > d.started_at)";
    let rows = db.query_all(sea_orm::Statement::from_string(db.get_database_backend(), sql.to_owned())).await?;
    rows.iter().map(|r| Ok(r.try_get::<Uuid>("", "site_id")?)).collect()
}

/// What a drill list is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub site_id: Option<Uuid>,
    pub status: Option<DrillStatus>,
}

/// Drills, newest first, as `caller` may see them: all for admins, their own sites' for a
/// customer user.
pub async fn list(
    db: &impl ConnectionTrait,
    caller: &Caller,
    filter: Filter,
    page: Page,
) -> Result<Paged<backup_drills::Model>> {
    let mut q = access::backup_drills(caller);
    if let Some(site) = filter.site_id {
        q = q.filter(backup_drills::Column::SiteId.eq(site));
    }
    if let Some(status) = filter.status {
        q = q.filter(backup_drills::Column::Status.eq(status));
    }
    page::fetch(db, q, backup_drills::Column::Id, page, |d| d.id).await
}

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max_chars - 1).collect();
    out.push('…');
    out
}
