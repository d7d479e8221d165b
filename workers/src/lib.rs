//! Berth's background work. Today: housekeeping (expired one-time links). The durable job
//! queue, scheduler and flows grow here (see issue 5); `berth worker` runs this apart from
//! the HTTP server, `berth serve` runs it in process by default.

pub mod reconciler;

use std::time::Duration;

use berth_core::entities::password_tokens;
use chrono::Utc;
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter};
use tokio::sync::watch;

/// How often housekeeping runs.
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);

/// Runs until `shutdown` turns true.
pub async fn run(db: DatabaseConnection, mut shutdown: watch::Receiver<bool>) {
    tracing::info!("Workers started");
    let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                match purge_password_links(&db).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "Removed expired or used set-password links"),
                    Err(e) => tracing::warn!(error = %e, "Housekeeping failed; will retry"),
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    tracing::info!("Workers stopped");
}

/// Deletes set-password links that expired, or were used, more than a day ago.
pub async fn purge_password_links(db: &DatabaseConnection) -> Result<u64, sea_orm::DbErr> {
    let cutoff = Utc::now() - chrono::Duration::days(1);
    let res = password_tokens::Entity::delete_many()
        .filter(
            Condition::any()
                .add(password_tokens::Column::ExpiresAt.lt(cutoff))
                .add(password_tokens::Column::UsedAt.lt(cutoff)),
        )
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}
