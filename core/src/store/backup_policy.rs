//! Backup schedules and GFS retention: set per plan by administrators, overridable per site
//! (administrators only; a customer sees what is in force for their own sites). What is in
//! force for a site is [`Effective`]: each of the site's overrides, or else its plan's value.
//!
//! Cron expressions are checked with the scheduler's own parser
//! ([`crate::schedule::validate_backup_cron`]), so what is accepted here is what fires.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, QueryFilter, TransactionTrait};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, Event};
use crate::access::{self, Caller};
use crate::backup_retention::Policy;
use crate::entities::{customers, plans, sites};
use crate::error::{Error, Fields, Result};
use crate::schedule::{latest_tick, parse, validate_backup_cron};

/// The most copies of one kind a policy may keep.
pub const MAX_KEEP: i32 = 1000;

/// Backup settings, every one optional: a plan patch (absent: unchanged) or a site's overrides
/// (absent: the plan's).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settings {
    pub backup_cron: Option<String>,
    pub backup_verify_cron: Option<String>,
    pub keep_hourly: Option<i32>,
    pub keep_daily: Option<i32>,
    pub keep_weekly: Option<i32>,
    pub keep_monthly: Option<i32>,
    pub keep_yearly: Option<i32>,
}

impl Settings {
    /// A site's overrides as stored.
    pub fn of_site(site: &sites::Model) -> Self {
        Self {
            backup_cron: site.backup_cron.clone(),
            backup_verify_cron: site.backup_verify_cron.clone(),
            keep_hourly: site.keep_hourly,
            keep_daily: site.keep_daily,
            keep_weekly: site.keep_weekly,
            keep_monthly: site.keep_monthly,
            keep_yearly: site.keep_yearly,
        }
    }

    /// Checks every field (collecting all errors) and returns the settings normalised.
    pub fn validate(&self) -> Result<Settings> {
        let mut fields = Fields::new();
        let mut cron = |name: &str, value: &Option<String>| match value {
            None => None,
            Some(v) => fields.check(name, validate_backup_cron(v)),
        };
        let backup_cron = cron("backup_cron", &self.backup_cron);
        let backup_verify_cron = cron("backup_verify_cron", &self.backup_verify_cron);
        for (name, value) in self.keeps() {
            if let Some(n) = value {
                if !(0..=MAX_KEEP).contains(&n) {
                    fields.push(name, format!("must be a whole number from 0 to {MAX_KEEP}"));
                }
            }
        }
        fields.finish()?;
        Ok(Settings { backup_cron, backup_verify_cron, ..self.clone() })
    }

    fn keeps(&self) -> [(&'static str, Option<i32>); 5] {
        [
            ("keep_hourly", self.keep_hourly),
            ("keep_daily", self.keep_daily),
            ("keep_weekly", self.keep_weekly),
            ("keep_monthly", self.keep_monthly),
            ("keep_yearly", self.keep_yearly),
        ]
    }
}

/// What is in force for a site: its overrides over its plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effective {
    pub backup_cron: String,
    pub backup_verify_cron: String,
    pub keep_hourly: i32,
    pub keep_daily: i32,
    pub keep_weekly: i32,
    pub keep_monthly: i32,
    pub keep_yearly: i32,
}

impl Effective {
    pub fn resolve(plan: &plans::Model, overrides: &Settings) -> Self {
        Self {
            backup_cron: overrides.backup_cron.clone().unwrap_or_else(|| plan.backup_cron.clone()),
            backup_verify_cron: overrides.backup_verify_cron.clone().unwrap_or_else(|| plan.backup_verify_cron.clone()),
            keep_hourly: overrides.keep_hourly.unwrap_or(plan.keep_hourly),
            keep_daily: overrides.keep_daily.unwrap_or(plan.keep_daily),
            keep_weekly: overrides.keep_weekly.unwrap_or(plan.keep_weekly),
            keep_monthly: overrides.keep_monthly.unwrap_or(plan.keep_monthly),
            keep_yearly: overrides.keep_yearly.unwrap_or(plan.keep_yearly),
        }
    }

    /// A plan's own settings.
    pub fn of_plan(plan: &plans::Model) -> Self {
        Self::resolve(plan, &Settings::default())
    }

    /// The retention policy, for [`crate::backup_retention::decide`].
    pub fn retention(&self) -> Policy {
        let n = |v: i32| u32::try_from(v).unwrap_or(0);
        Policy {
            keep_hourly: n(self.keep_hourly),
            keep_daily: n(self.keep_daily),
            keep_weekly: n(self.keep_weekly),
            keep_monthly: n(self.keep_monthly),
            keep_yearly: n(self.keep_yearly),
        }
    }
}

/// Which backup a schedule calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueBackup {
    /// A backup on `backup_cron` (de-duplicated against the previous one).
    Backup,
    /// The daily backup on `backup_verify_cron`, verified after it is written.
    Verified,
}

impl Effective {
    /// What a site is due at `now` when its schedules last fired for tick `last`: the newest
    /// tick of either schedule in `(last, now]`, and which kind. A due verified backup wins
    /// (after downtime that spanned both, the day still gets its verified copy); like the
    /// scheduler, missed ticks fire once, not once each. `None`: nothing is due (or an
    /// expression stored before validation no longer parses).
    pub fn due(&self, last: DateTime<Utc>, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DueBackup)> {
        let tick = |expr: &str| parse(expr).ok().and_then(|s| latest_tick(&s, now)).filter(|t| *t > last);
        let backup = tick(&self.backup_cron);
        let verified = tick(&self.backup_verify_cron);
        match (verified, backup) {
            (Some(v), b) => Some((b.map_or(v, |b| b.max(v)), DueBackup::Verified)),
            (None, Some(b)) => Some((b, DueBackup::Backup)),
            (None, None) => None,
        }
    }
}

/// A site's backup settings: what is in force, and which of it the site overrides.
#[derive(Debug, Clone)]
pub struct SitePolicy {
    pub site_id: Uuid,
    pub plan_id: String,
    pub overrides: Settings,
    pub effective: Effective,
}

/// Admin-only: changes a plan's backup schedule and retention (absent fields unchanged).
/// `keep_daily` also writes `backup_retention_days`, its mirror.
pub async fn update_plan<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    plan_id: &str,
    patch: Settings,
) -> Result<plans::Model> {
    caller.require_admin()?;
    let patch = patch.validate()?;
    let txn = db.begin().await?;
    let current = super::plans::find(&txn, plan_id).await?.ok_or(Error::NotFound("plan"))?;
    let before = Effective::of_plan(&current);
    let mut active: plans::ActiveModel = current.clone().into();
    if let Some(v) = patch.backup_cron {
        active.backup_cron = Set(v);
    }
    if let Some(v) = patch.backup_verify_cron {
        active.backup_verify_cron = Set(v);
    }
    if let Some(v) = patch.keep_hourly {
        active.keep_hourly = Set(v);
    }
    if let Some(v) = patch.keep_daily {
        active.keep_daily = Set(v);
        active.backup_retention_days = Set(v);
    }
    if let Some(v) = patch.keep_weekly {
        active.keep_weekly = Set(v);
    }
    if let Some(v) = patch.keep_monthly {
        active.keep_monthly = Set(v);
    }
    if let Some(v) = patch.keep_yearly {
        active.keep_yearly = Set(v);
    }
    if !active.is_changed() {
        txn.commit().await?;
        return Ok(current);
    }
    let model = active.update(&txn).await?;
    let after = Effective::of_plan(&model);
    if after != before {
        audit::record(
            &txn,
            caller,
            Event::new("plan.backup_policy", "plan", &model.id).details(json!({"from": before, "to": after})),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(model)
}

/// A site's backup settings, for whoever may see the site (another tenant's: not found).
pub async fn site(db: &impl ConnectionTrait, caller: &Caller, site_id: Uuid) -> Result<SitePolicy> {
    let site =
        access::sites(caller).filter(sites::Column::Id.eq(site_id)).one(db).await?.ok_or(Error::NotFound("site"))?;
    policy_of(db, &site).await
}

async fn policy_of(db: &impl ConnectionTrait, site: &sites::Model) -> Result<SitePolicy> {
    use sea_orm::EntityTrait;
    let customer = customers::Entity::find_by_id(site.customer_id).one(db).await?.ok_or(Error::NotFound("site"))?;
    let plan = super::plans::find(db, &customer.plan_id).await?.ok_or_else(|| {
        Error::Internal(anyhow::anyhow!("customer {} has unknown plan {}", customer.id, customer.plan_id))
    })?;
    let overrides = Settings::of_site(site);
    let effective = Effective::resolve(&plan, &overrides);
    Ok(SitePolicy { site_id: site.id, plan_id: plan.id, overrides, effective })
}

/// Admin-only: replaces a site's overrides (an absent field follows the plan again).
pub async fn set_site_overrides<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    site_id: Uuid,
    overrides: Settings,
) -> Result<SitePolicy> {
    caller.require_admin()?;
    let overrides = overrides.validate()?;
    let txn = db.begin().await?;
    let site =
        access::sites(caller).filter(sites::Column::Id.eq(site_id)).one(&txn).await?.ok_or(Error::NotFound("site"))?;
    let before = Settings::of_site(&site);
    if before == overrides {
        let policy = policy_of(&txn, &site).await?;
        txn.commit().await?;
        return Ok(policy);
    }
    let customer_id = site.customer_id;
    let mut active: sites::ActiveModel = site.into();
    active.backup_cron = Set(overrides.backup_cron.clone());
    active.backup_verify_cron = Set(overrides.backup_verify_cron.clone());
    active.keep_hourly = Set(overrides.keep_hourly);
    active.keep_daily = Set(overrides.keep_daily);
    active.keep_weekly = Set(overrides.keep_weekly);
    active.keep_monthly = Set(overrides.keep_monthly);
    active.keep_yearly = Set(overrides.keep_yearly);
    active.updated_at = Set(super::now());
    let site = active.update(&txn).await?;
    let policy = policy_of(&txn, &site).await?;
    audit::record(
        &txn,
        caller,
        Event::new("site.backup_policy", "site", site_id)
            .customer(Some(customer_id))
            .details(json!({"overrides": overrides_json(&overrides), "effective": policy.effective})),
    )
    .await?;
    txn.commit().await?;
    Ok(policy)
}

fn overrides_json(s: &Settings) -> serde_json::Value {
    json!({
        "backup_cron": s.backup_cron, "backup_verify_cron": s.backup_verify_cron,
        "keep_hourly": s.keep_hourly, "keep_daily": s.keep_daily, "keep_weekly": s.keep_weekly,
        "keep_monthly": s.keep_monthly, "keep_yearly": s.keep_yearly,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_collects_every_bad_field() {
        let bad = Settings {
            backup_cron: Some("every hour".into()),
            backup_verify_cron: Some("0 0 31 2 *".into()),
            keep_daily: Some(-1),
            keep_yearly: Some(MAX_KEEP + 1),
            ..Settings::default()
        };
        let Err(Error::Validation(errors)) = bad.validate() else { panic!("accepted") };
        let names: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(names, ["backup_cron", "backup_verify_cron", "keep_daily", "keep_yearly"]);

        let ok = Settings { backup_cron: Some(" 15  *  * * *".into()), keep_hourly: Some(0), ..Settings::default() };
        assert_eq!(ok.validate().expect("valid").backup_cron.as_deref(), Some("15 * * * *"));
    }

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        use chrono::TimeZone;
        Utc.with_ymd_and_hms(2026, 12, d, h, m, 0).single().expect("valid time")
    }

    #[test]
    fn the_due_backup_is_the_newest_tick_since_the_last_one() {
        let e = Effective {
            backup_cron: "0 * * * *".into(),
            backup_verify_cron: "30 3 * * *".into(),
            keep_hourly: 24,
            keep_daily: 7,
            keep_weekly: 4,
            keep_monthly: 12,
            keep_yearly: 10,
        };
        assert_eq!(e.due(at(2, 2, 0), at(2, 2, 59)), None);
        assert_eq!(e.due(at(2, 2, 0), at(2, 3, 0)), Some((at(2, 3, 0), DueBackup::Backup)));
        assert_eq!(e.due(at(2, 3, 0), at(2, 3, 30)), Some((at(2, 3, 30), DueBackup::Verified)));
        assert_eq!(e.due(at(2, 3, 30), at(2, 4, 10)), Some((at(2, 4, 0), DueBackup::Backup)));
        // Down from 01:00 to 05:10: one run, the verified one, stamped with the newest tick.
        assert_eq!(e.due(at(2, 1, 0), at(2, 5, 10)), Some((at(2, 5, 0), DueBackup::Verified)));
    }
}
