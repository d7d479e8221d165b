//! The data-access layer: every read and write of domain data goes through these functions,
//! each taking the [`Caller`](crate::access::Caller) it acts for. Mutations run in one
//! transaction together with their audit entry, so an action is never done without its record.

pub mod alert_states;
pub mod alerts;
pub mod audit;
pub mod backup_checks;
pub mod backup_drills;
pub mod backup_overview;
pub mod backup_policy;
pub mod backups;
pub mod batch;
pub mod customers;
pub mod dashboard;
pub mod flows;
pub mod jobs;
pub mod metrics;
pub mod page;
pub mod plans;
pub mod signup;
pub mod silences;
pub mod site_state;
pub mod site_volumes;
pub mod sites;
pub mod token_cache;
pub mod tokens;
pub mod users;

use sea_orm::sea_query::{Expr, Func, LikeExpr, SimpleExpr};
use sea_orm::ColumnTrait;

/// A case-insensitive "contains" filter with the user's `%` and `_` taken literally.
pub(crate) fn contains_ci(column: impl ColumnTrait, needle: &str) -> SimpleExpr {
    let escaped = needle.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    Expr::expr(Func::lower(Expr::col(column))).like(LikeExpr::new(format!("%{escaped}%")).escape('\\'))
}

pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}
