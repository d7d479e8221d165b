//! Site backups: requesting one (row + `backup.site` job + audit entry in one transaction),
//! tenant-scoped reads, and the state changes the job makes as it runs.
//!
//! Reads go through `access::backups(caller)` and first load the site through
//! `access::sites(caller)`, so another customer's site or backup id is simply not found (404).
//! A row becomes `succeeded` only together with `verified = true` and its snapshot's facts
//! ([`succeed`]); a run that dies half-way leaves it `running` (never complete) until the job's
//! retry finishes it.

use sea_orm::{
    ActiveEnum, ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, Event};
use super::page::{self, Page, Paged};
use crate::access::{self, Caller};
use crate::entities::{backups, sites};
use crate::error::{Error, Result};
use crate::jobs::backup::BackupSite;
use crate::jobs::{self, Options};
use crate::types::{BackupKind, BackupStatus, SiteStatus};

/// A backup that was asked for, and the job that runs it.
#[derive(Debug, Clone)]
pub struct Requested {
    pub backup: backups::Model,
    pub job_id: Option<Uuid>,
}

/// The site `site_id` as `caller` may see it; another tenant's site is not found.
pub async fn site(db: &impl ConnectionTrait, caller: &Caller, site_id: Uuid) -> Result<sites::Model> {
    access::sites(caller).filter(sites::Column::Id.eq(site_id)).one(db).await?.ok_or(Error::NotFound("site"))
}

/// Records a backup of `site_id` as `queued` and enqueues its `backup.site` job, with the audit
/// entry, in one transaction. `target` is where the repository lives (`local` or `s3`).
pub async fn request<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    site_id: Uuid,
    kind: BackupKind,
    target: &str,
) -> Result<Requested> {
    let txn = db.begin().await?;
    let site = site(&txn, caller, site_id).await?;
    if site.status == SiteStatus::Deleting {
        return Err(Error::Conflict("this site is being deleted; it cannot be backed up".into()));
    }
    let id = Uuid::now_v7();
    let backup = backups::ActiveModel {
        id: Set(id),
        site_id: Set(site.id),
        customer_id: Set(site.customer_id),
        kind: Set(kind),
        status: Set(BackupStatus::Queued),
        snapshot_id: Set(None),
        size_bytes: Set(None),
        added_bytes: Set(None),
        file_count: Set(None),
        manifest_sha256: Set(None),
        verified: Set(false),
        target: Set(target.to_owned()),
        error: Set(None),
        job_id: Set(None),
        started_at: Set(None),
        finished_at: Set(None),
        created_at: Set(super::now()),
    }
    .insert(&txn)
    .await?;
    let options = Options { customer_id: Some(site.customer_id), ..Options::default() };
    let job_id = jobs::enqueue_with(&txn, &BackupSite { backup_id: id }, options).await?;
    let mut active: backups::ActiveModel = backup.into();
    active.job_id = Set(job_id);
    let backup = active.update(&txn).await?;
    audit::record(
        &txn,
        caller,
        Event::new("backup.create", "backup", id)
            .customer(Some(site.customer_id))
            .details(json!({"site_id": site.id, "kind": kind, "target": target})),
    )
    .await?;
    txn.commit().await?;
    Ok(Requested { backup, job_id })
}

/// The backups of one site, newest first, one page at a time.
pub async fn list_for_site(
    db: &impl ConnectionTrait,
    caller: &Caller,
    site_id: Uuid,
    page: Page,
) -> Result<Paged<backups::Model>> {
    let site = site(db, caller, site_id).await?;
    let q = access::backups(caller).filter(backups::Column::SiteId.eq(site.id));
    page::fetch(db, q, backups::Column::Id, page, |b| b.id).await
}

/// One backup of one site; another tenant's ids, or a backup of another site, are not found.
pub async fn get(db: &impl ConnectionTrait, caller: &Caller, site_id: Uuid, backup_id: Uuid) -> Result<backups::Model> {
    let site = site(db, caller, site_id).await?;
    access::backups(caller)
        .filter(backups::Column::Id.eq(backup_id))
        .filter(backups::Column::SiteId.eq(site.id))
        .one(db)
        .await?
        .ok_or(Error::NotFound("backup"))
}

/// The row, for the job (Berth acting for itself).
pub async fn find(db: &impl ConnectionTrait, backup_id: Uuid) -> Result<Option<backups::Model>> {
    Ok(backups::Entity::find_by_id(backup_id).one(db).await?)
}

/// Marks an attempt as started: `running`, its error cleared. A row already `succeeded` is left
/// alone (returns `None`), so a duplicate run never redoes finished work.
pub async fn start(db: &impl ConnectionTrait, backup_id: Uuid) -> Result<Option<backups::Model>> {
    let Some(row) = find(db, backup_id).await? else { return Ok(None) };
    if row.status == BackupStatus::Succeeded {
        return Ok(None);
    }
    let mut active: backups::ActiveModel = row.into();
    active.status = Set(BackupStatus::Running);
    active.error = Set(None);
    active.started_at = Set(Some(super::now()));
    active.finished_at = Set(None);
    Ok(Some(active.update(db).await?))
}

/// What a finished, read-back snapshot is.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub snapshot_id: String,
    pub size_bytes: u64,
    pub added_bytes: u64,
    pub file_count: u64,
    pub manifest_sha256: String,
}

/// Marks the backup `succeeded` and `verified`. Call only after the snapshot was read back.
pub async fn succeed(db: &impl ConnectionTrait, backup_id: Uuid, outcome: Outcome) -> Result<backups::Model> {
    let row = find(db, backup_id).await?.ok_or(Error::NotFound("backup"))?;
    let mut active: backups::ActiveModel = row.into();
    active.status = Set(BackupStatus::Succeeded);
    active.verified = Set(true);
    active.snapshot_id = Set(Some(outcome.snapshot_id));
    active.size_bytes = Set(Some(clamp(outcome.size_bytes)));
    active.added_bytes = Set(Some(clamp(outcome.added_bytes)));
    active.file_count = Set(Some(clamp(outcome.file_count)));
    active.manifest_sha256 = Set(Some(outcome.manifest_sha256));
    active.error = Set(None);
    active.finished_at = Set(Some(super::now()));
    Ok(active.update(db).await?)
}

/// Marks the backup `failed` with `error` (shortened to fit). A later attempt of the job may
/// still succeed; until then the row says why this one did not.
pub async fn fail(db: &impl ConnectionTrait, backup_id: Uuid, error: &str) -> Result<()> {
    let Some(row) = find(db, backup_id).await? else { return Ok(()) };
    if row.status == BackupStatus::Succeeded {
        return Ok(());
    }
    let mut active: backups::ActiveModel = row.into();
    active.status = Set(BackupStatus::Failed);
    active.verified = Set(false);
    active.error = Set(Some(shorten(error, 2000)));
    active.finished_at = Set(Some(super::now()));
    active.update(db).await?;
    Ok(())
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max_chars - 1).collect();
    out.push('…');
    out
}

/// The scheduled backups due at `now`: for every running site, whether its effective
/// `backup_cron` (kind `hourly`) or `backup_verify_cron` (kind `daily`) ticked since its last
/// scheduled backup (or, before the first, since the site was made). A tick is due until a
/// backup after it exists, so a missed round is made up by the next one, once.
pub async fn due(db: &impl ConnectionTrait, now: chrono::DateTime<chrono::Utc>) -> Result<Vec<(Uuid, BackupKind)>> {
    use std::collections::HashMap;

    use sea_orm::{QuerySelect, SelectColumns};

    use super::backup_policy::{DueBackup, Effective, Settings};
    use crate::entities::{customers, plans};

    let sites = sites::Entity::find().filter(sites::Column::Status.eq(SiteStatus::Running)).all(db).await?;
    if sites.is_empty() {
        return Ok(Vec::new());
    }
    let plan_of: HashMap<Uuid, String> = customers::Entity::find()
        .select_only()
        .select_column(customers::Column::Id)
        .select_column(customers::Column::PlanId)
        .into_tuple::<(Uuid, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let plans: HashMap<String, plans::Model> =
        plans::Entity::find().all(db).await?.into_iter().map(|p| (p.id.clone(), p)).collect();
    // One grouped read of every site's last scheduled backup, whatever its outcome: a failed
    // one is retried by its job, not queued again by the schedule.
    let last: HashMap<Uuid, chrono::DateTime<chrono::Utc>> = backups::Entity::find()
        .select_only()
        .column(backups::Column::SiteId)
        .column_as(backups::Column::CreatedAt.max(), "last")
        .filter(backups::Column::Kind.is_in([BackupKind::Hourly, BackupKind::Daily]))
        .group_by(backups::Column::SiteId)
        .into_tuple::<(Uuid, chrono::DateTime<chrono::Utc>)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let mut out = Vec::new();
    for site in &sites {
        let Some(plan) = plan_of.get(&site.customer_id).and_then(|id| plans.get(id)) else { continue };
        let policy = Effective::resolve(plan, &Settings::of_site(site));
        let since = last.get(&site.id).copied().unwrap_or(site.created_at).max(site.created_at);
        match policy.due(since, now) {
            Some((_, DueBackup::Verified)) => out.push((site.id, BackupKind::Daily)),
            Some((_, DueBackup::Backup)) => out.push((site.id, BackupKind::Hourly)),
            None => {}
        }
    }
    Ok(out)
}

// ----- retention and alerting -----

/// The customers that have backup rows (so, possibly, a repository): what `backup.prune` and
/// `backup.check` go through.
pub async fn customers_with_backups(db: &impl ConnectionTrait) -> Result<Vec<Uuid>> {
    use sea_orm::QuerySelect;
    Ok(backups::Entity::find()
        .select_only()
        .column(backups::Column::CustomerId)
        .distinct()
        .into_tuple::<Uuid>()
        .all(db)
        .await?)
}

/// A customer's backups that retention has not removed yet, with each site's retention policy
/// in force (its overrides over the customer's plan; a deleted site's backups follow the plan).
pub struct CustomerBackups {
    pub rows: Vec<backups::Model>,
    pub policy_of_site: std::collections::HashMap<Uuid, crate::backup_retention::Policy>,
    pub plan_policy: crate::backup_retention::Policy,
}

pub async fn for_retention(db: &impl ConnectionTrait, customer_id: Uuid) -> Result<CustomerBackups> {
    use super::backup_policy::{Effective, Settings};
    use crate::entities::customers;
    let rows = backups::Entity::find()
        .filter(backups::Column::CustomerId.eq(customer_id))
        .filter(backups::Column::Status.ne(BackupStatus::Pruned))
        .all(db)
        .await?;
    let customer = customers::Entity::find_by_id(customer_id).one(db).await?.ok_or(Error::NotFound("customer"))?;
    let plan = super::plans::find(db, &customer.plan_id).await?.ok_or_else(|| {
        Error::Internal(anyhow::anyhow!("customer {} has unknown plan {}", customer.id, customer.plan_id))
    })?;
    let sites = sites::Entity::find().filter(sites::Column::CustomerId.eq(customer_id)).all(db).await?;
    let policy_of_site =
        sites.iter().map(|s| (s.id, Effective::resolve(&plan, &Settings::of_site(s)).retention())).collect();
    Ok(CustomerBackups { rows, policy_of_site, plan_policy: Effective::of_plan(&plan).retention() })
}

/// Whether any of these `backup.site` jobs is being run by a worker right now (a live lease).
pub async fn any_job_running(db: &impl ConnectionTrait, job_ids: &[Uuid]) -> Result<bool> {
    use crate::entities::jobs::{self, JobState};
    if job_ids.is_empty() {
        return Ok(false);
    }
    let running = jobs::Entity::find()
        .filter(jobs::Column::Id.is_in(job_ids.iter().copied()))
        .filter(jobs::Column::State.eq(JobState::Running))
        .filter(jobs::Column::LeaseExpiresAt.gt(super::now()))
        .one(db)
        .await?;
    Ok(running.is_some())
}

/// Marks backups whose snapshots retention forgot as `pruned`, with one audit entry for the
/// customer (`backup.prune`), in one transaction.
pub async fn mark_pruned<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    customer_id: Uuid,
    ids: &[Uuid],
    forgotten_snapshots: usize,
) -> Result<()> {
    use sea_orm::sea_query::Expr;
    if ids.is_empty() {
        return Ok(());
    }
    let txn = db.begin().await?;
    backups::Entity::update_many()
        .col_expr(backups::Column::Status, Expr::value(BackupStatus::Pruned.to_value()))
        .filter(backups::Column::Id.is_in(ids.iter().copied()))
        .filter(backups::Column::CustomerId.eq(customer_id))
        .filter(backups::Column::Status.is_in([BackupStatus::Succeeded, BackupStatus::Failed]))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        caller,
        Event::new("backup.prune", "customer", customer_id)
            .customer(Some(customer_id))
            .details(json!({"backups": ids, "snapshots_forgotten": forgotten_snapshots})),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// For every site with failing backups: how many of its backups failed for good (every attempt
/// of the job used up, or the job gone) since its newest good one. A failure whose job will
/// still retry is not counted yet: the retry may well succeed. What the `backup` alert reads.
pub async fn failing_sites(db: &impl ConnectionTrait) -> Result<std::collections::HashMap<Uuid, i64>> {
    use sea_orm::Statement;
    let sql = "SELECT b.site_id, COUNT(*) AS n FROM backups b LEFT JOIN jobs j ON j.id = b.job_id \
               WHERE b.status = 'failed' AND (j.id IS NULL OR j.state NOT IN ('queued', 'running')) \
               AND NOT EXISTS (SELECT 1 FROM backups g WHERE g.site_id = b.site_id \
               AND g.status IN ('succeeded', 'pruned') AND g.created_at > b.created_at) \
               GROUP BY b.site_id";
    let rows = db.query_all(Statement::from_string(db.get_database_backend(), sql.to_owned())).await?;
    rows.iter().map(|r| Ok((r.try_get::<Uuid>("", "site_id")?, r.try_get::<i64>("", "n")?))).collect()
}

#[cfg(test)]
mod tests {
    use super::shorten;

    #[test]
    fn errors_are_shortened_on_a_character_boundary() {
        assert_eq!(shorten("abc", 5), "abc");
        assert_eq!(shorten("ééééé", 3), "éé…");
    }
}
