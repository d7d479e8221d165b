//! Bearer API tokens: for scripts and operators. A token acts as its owner and is scoped like
//! them; only its SHA-256 is stored.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, Event};
use super::token_cache;
use crate::access::Caller;
use crate::crypto;
use crate::entities::{api_tokens, users as user_entity};
use crate::error::{Error, Fields, Result};
use crate::validate;

/// Every Berth token starts with this, so secret scanners can recognise a leaked one.
pub const TOKEN_PREFIX: &str = "berth_";

/// Creates a token for `owner`; returns the record and the token in clear (shown once).
pub async fn create<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    owner: &user_entity::Model,
    name: &str,
) -> Result<(api_tokens::Model, String)> {
    let mut fields = Fields::new();
    let name = fields.check("name", validate::token_name(name));
    fields.finish()?;
    let token = crypto::random_token(TOKEN_PREFIX);
    let txn = db.begin().await?;
    let model = api_tokens::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(owner.id),
        name: Set(name.unwrap_or_default()),
        token_hash: Set(crypto::hash_token(&token)),
        prefix: Set(token.chars().take(TOKEN_PREFIX.len() + 6).collect()),
        last_used_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(super::now()),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        caller,
        Event::new("token.create", "api_token", model.id)
            .customer(owner.customer_id)
            .details(json!({"name": model.name, "owner": owner.email})),
    )
    .await?;
    txn.commit().await?;
    Ok((model, token))
}

/// The caller's own tokens (revoked ones included, marked as such).
pub async fn list(db: &impl ConnectionTrait, caller: &Caller) -> Result<Vec<api_tokens::Model>> {
    let Some(user_id) = caller.user_id else {
        return Ok(Vec::new());
    };
    Ok(api_tokens::Entity::find()
        .filter(api_tokens::Column::UserId.eq(user_id))
        .order_by_desc(api_tokens::Column::Id)
        .all(db)
        .await?)
}

pub async fn revoke<C: ConnectionTrait + TransactionTrait>(db: &C, caller: &Caller, id: Uuid) -> Result<()> {
    let user_id = caller.user_id.ok_or(Error::NotFound("token"))?;
    // Dropped after the commit: this process stops accepting the token at once.
    let _forget = token_cache::Forget::token(id);
    let txn = db.begin().await?;
    let token = api_tokens::Entity::find_by_id(id)
        .filter(api_tokens::Column::UserId.eq(user_id))
        .one(&txn)
        .await?
        .ok_or(Error::NotFound("token"))?;
    if token.revoked_at.is_none() {
        let mut active: api_tokens::ActiveModel = token.clone().into();
        active.revoked_at = Set(Some(super::now()));
        active.update(&txn).await?;
        audit::record(&txn, caller, Event::new("token.revoke", "api_token", id).details(json!({"name": token.name})))
            .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// How fresh a token's `last_used_at` is kept: within this many seconds of the last stamp, a
/// use writes nothing.
pub const LAST_USED_RESOLUTION_SECONDS: i64 = 60;

/// A live token's owner, with what the "last used" stamp needs; `?` is the token's hash.
const TOKEN_OWNER_SQL: &str = "SELECT u.*, t.id AS token_id, t.last_used_at AS token_last_used_at \
     FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ? AND t.revoked_at IS NULL";

/// Resolves a bearer token to its (enabled) owner, or `None` for anything else.
///
/// A token resolved within the last [`token_cache::TTL`] is answered from this process's
/// memory (`store::token_cache`): revoking it, or any change to its owner, made through this
/// process forgets it at once; another process sharing the database may accept it for at most
/// the TTL. A failed lookup is never remembered.
pub async fn authenticate(db: &impl ConnectionTrait, token: &str) -> Result<Option<user_entity::Model>> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
        return Ok(None);
    }
    let hash = crypto::hash_token(token);
    let now = super::now();
    if let Some(kept) = token_cache::get(&hash) {
        if stamp_due(kept.last_used_at, now) && stamp(db, kept.token_id, now).await {
            token_cache::stamped(&hash, now);
        }
        return Ok(Some(kept.user));
    }
    // Read before the database, so a change committed while we read keeps our answer out.
    let generation = token_cache::generation();
    // The token and its owner in one round trip.
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => TOKEN_OWNER_SQL.replace('?', "$1"),
        _ => TOKEN_OWNER_SQL.to_owned(),
    };
    let stmt = sea_orm::Statement::from_sql_and_values(backend, sql, [hash.clone().into()]);
    let Some(row) = db.query_one(stmt).await? else {
        return Ok(None);
    };
    let user = <user_entity::Model as sea_orm::FromQueryResult>::from_query_result(&row, "")?;
    if user.disabled {
        return Ok(None);
    }
    let token_id: Uuid = row.try_get("", "token_id")?;
    let mut last_used_at: Option<chrono::DateTime<chrono::Utc>> = row.try_get("", "token_last_used_at")?;
    if stamp_due(last_used_at, now) && stamp(db, token_id, now).await {
        last_used_at = Some(now);
    }
    token_cache::put(generation, hash, token_cache::Entry { user: user.clone(), token_id, last_used_at });
    Ok(Some(user))
}

/// "Last used" is stamped at most once a minute: a read must not cost a durable write (a commit
/// and an fsync) each time.
fn stamp_due(last_used_at: Option<chrono::DateTime<chrono::Utc>>, now: chrono::DateTime<chrono::Utc>) -> bool {
    last_used_at.is_none_or(|at| now - at >= chrono::Duration::seconds(LAST_USED_RESOLUTION_SECONDS))
}

/// Writes the token's "last used" stamp; best effort: a failed stamp must not fail the request
/// (it is logged, and tried again at the next use).
async fn stamp(db: &impl ConnectionTrait, token_id: Uuid, now: chrono::DateTime<chrono::Utc>) -> bool {
    match api_tokens::Entity::update_many()
        .col_expr(api_tokens::Column::LastUsedAt, sea_orm::sea_query::Expr::value(now))
        .filter(api_tokens::Column::Id.eq(token_id))
        .exec(db)
        .await
    {
        Ok(_) => true,
        Err(err) => {
            tracing::warn!(token.id = %token_id, error = %err, "Could not record API token use");
            false
        }
    }
}

/// Whether this process currently answers `token` from memory (for tests).
pub fn is_cached(token: &str) -> bool {
    token_cache::get(&crypto::hash_token(token)).is_some()
}

/// Makes this process look `token` up in the database at its next use, as the cache's TTL
/// running out would (for tests that change the database behind the process's back).
pub fn forget_cached(token: &str) {
    token_cache::forget_hash(&crypto::hash_token(token));
}
