//! Users: administrators and customers' portal users, their passwords, TOTP and one-time links.
//!
//! Every function here that writes a user's row holds a [`Forget`] guard across its commit, so
//! this process stops answering that user's API tokens from memory at once (`token_cache`).

use chrono::Duration;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, Event};
use super::customers;
use super::token_cache::Forget;
use crate::access::{self, Caller};
use crate::crypto::{self, Keys};
use crate::entities::{api_tokens, password_tokens, users};
use crate::error::{conflict_on_unique, Error, Fields, Result};
use crate::hash_pool;
use crate::totp;
use crate::types::Role;
use crate::validate;

const EMAIL_TAKEN: &str = "a user with this e-mail already exists";
/// How long a set-password link stays valid.
pub const PASSWORD_LINK_TTL_HOURS: i64 = 72;

/// Hashes off the async runtime (argon2id is deliberately slow) on the bounded hashing pool, so
/// a burst of requests cannot multiply its 19 MiB.
pub async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_owned();
    hash_pool::run(move || crypto::hash_password(&password))
        .await
        .map_err(|e| Error::Internal(e.into()))?
        .map_err(|e| Error::Internal(e.into()))
}

/// Checks a password on the bounded hashing pool; no hash (an unknown e-mail, a user without a
/// password) costs the same time and answers `Wrong`.
pub async fn verify_password(password: &str, hash: Option<String>) -> Result<crypto::PasswordCheck> {
    let password = password.to_owned();
    hash_pool::run(move || match hash {
        Some(h) => crypto::verify_password(&password, &h),
        None => {
            crypto::burn_password_check(&password);
            crypto::PasswordCheck::Wrong
        }
    })
    .await
    .map_err(|e| Error::Internal(e.into()))
}

/// Login lookup; unscoped because nobody is signed in yet.
pub async fn find_by_email(db: &impl ConnectionTrait, email: &str) -> Result<Option<users::Model>> {
    Ok(users::Entity::find().filter(users::Column::Email.eq(email.trim().to_lowercase())).one(db).await?)
}

/// Session and token lookup; unscoped for the same reason.
pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<users::Model>> {
    Ok(users::Entity::find_by_id(id).one(db).await?)
}

pub async fn count_admins(db: &impl ConnectionTrait) -> Result<u64> {
    Ok(users::Entity::find().filter(users::Column::Role.eq(Role::Admin)).count(db).await?)
}

pub(crate) fn new_user(
    email: String,
    role: Role,
    customer_id: Option<Uuid>,
    password_hash: Option<String>,
) -> users::ActiveModel {
    let now = super::now();
    users::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email),
        password_hash: Set(password_hash),
        role: Set(role),
        customer_id: Set(customer_id),
        totp_secret: Set(None),
        totp_enabled: Set(false),
        totp_last_step: Set(None),
        disabled: Set(false),
        session_epoch: Set(0),
        last_login_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// Creates an administrator with a password (CLI and first-start bootstrap).
pub async fn create_admin<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    email: &str,
    password: &str,
) -> Result<users::Model> {
    caller.require_admin()?;
    let mut fields = Fields::new();
    let email = fields.check("email", validate::email(email));
    fields.check("password", validate::password(password));
    fields.finish()?;
    let email = email.unwrap_or_default();
    let hash = hash_password(password).await?;
    let txn = db.begin().await?;
    let user = new_user(email, Role::Admin, None, Some(hash))
        .insert(&txn)
        .await
        .map_err(|e| conflict_on_unique(e, EMAIL_TAKEN))?;
    audit::record(
        &txn,
        caller,
        Event::new("user.create", "user", user.id).details(json!({"email": user.email, "role": "admin"})),
    )
    .await?;
    txn.commit().await?;
    Ok(user)
}

/// A new portal user of a customer and, when it has no password, its one-time link token.
pub async fn create_customer_user<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    customer_id: Uuid,
    email: &str,
    password: Option<&str>,
) -> Result<(users::Model, Option<String>)> {
    caller.require_admin()?;
    let mut fields = Fields::new();
    let email = fields.check("email", validate::email(email));
    if let Some(p) = password {
        fields.check("password", validate::password(p));
    }
    fields.finish()?;
    let email = email.unwrap_or_default();
    let hash = match password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    let txn = db.begin().await?;
    let (user, link) = insert_customer_user(&txn, caller, customer_id, email, hash, password.is_none()).await?;
    txn.commit().await?;
    Ok((user, link))
}

/// A portal user created by signup: no password and no link yet; the welcome e-mail carries
/// the one-time link when it is sent.
pub async fn create_signup_user<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    customer_id: Uuid,
    email: &str,
) -> Result<users::Model> {
    caller.require_admin()?;
    let email = validate::email(email).map_err(|m| Error::invalid("email", m))?;
    let txn = db.begin().await?;
    let (user, _) = insert_customer_user(&txn, caller, customer_id, email, None, false).await?;
    txn.commit().await?;
    Ok(user)
}

async fn insert_customer_user(
    txn: &impl ConnectionTrait,
    caller: &Caller,
    customer_id: Uuid,
    email: String,
    hash: Option<String>,
    issue_link: bool,
) -> Result<(users::Model, Option<String>)> {
    customers::get(txn, caller, customer_id).await?;
    let user = new_user(email, Role::Customer, Some(customer_id), hash)
        .insert(txn)
        .await
        .map_err(|e| conflict_on_unique(e, EMAIL_TAKEN))?;
    let link = if issue_link { Some(issue_password_token(txn, user.id).await?) } else { None };
    audit::record(
        txn,
        caller,
        Event::new("user.create", "user", user.id)
            .customer(Some(customer_id))
            .details(json!({"email": user.email, "role": "customer", "set_password_link": link.is_some()})),
    )
    .await?;
    Ok((user, link))
}

pub async fn list_for_customer(
    db: &impl ConnectionTrait,
    caller: &Caller,
    customer_id: Uuid,
) -> Result<Vec<users::Model>> {
    caller.require_admin()?;
    customers::get(db, caller, customer_id).await?;
    Ok(access::users(caller)
        .filter(users::Column::CustomerId.eq(customer_id))
        .order_by_asc(users::Column::Email)
        .all(db)
        .await?)
}

/// Disabling a user ends every session (epoch bump) and revokes every API token at once.
pub async fn set_disabled<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    customer_id: Uuid,
    user_id: Uuid,
    disabled: bool,
) -> Result<users::Model> {
    caller.require_admin()?;
    // After the commit, this process stops accepting the user's API tokens at once.
    let _forget = Forget::user(user_id);
    let txn = db.begin().await?;
    let user = access::users(caller)
        .filter(users::Column::Id.eq(user_id))
        .filter(users::Column::CustomerId.eq(customer_id))
        .one(&txn)
        .await?
        .ok_or(Error::NotFound("user"))?;
    if user.disabled == disabled {
        txn.commit().await?;
        return Ok(user);
    }
    let epoch = user.session_epoch + 1;
    let mut active: users::ActiveModel = user.into();
    active.disabled = Set(disabled);
    active.session_epoch = Set(epoch);
    active.updated_at = Set(super::now());
    let user = active.update(&txn).await?;
    if disabled {
        revoke_all_tokens(&txn, user.id).await?;
    }
    audit::record(
        &txn,
        caller,
        Event::new(if disabled { "user.disable" } else { "user.enable" }, "user", user.id).customer(Some(customer_id)),
    )
    .await?;
    txn.commit().await?;
    Ok(user)
}

async fn revoke_all_tokens(db: &impl ConnectionTrait, user_id: Uuid) -> Result<()> {
    api_tokens::Entity::update_many()
        .col_expr(api_tokens::Column::RevokedAt, sea_orm::sea_query::Expr::value(super::now()))
        .filter(api_tokens::Column::UserId.eq(user_id))
        .filter(api_tokens::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Bookkeeping after a successful login; stores a fresh hash when the old one used outdated
/// parameters.
pub async fn record_login<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    user: users::Model,
    caller: &Caller,
    rehash: Option<String>,
) -> Result<users::Model> {
    let _forget = Forget::user(user.id);
    let txn = db.begin().await?;
    let mut active: users::ActiveModel = user.into();
    active.last_login_at = Set(Some(super::now()));
    if let Some(hash) = rehash {
        active.password_hash = Set(Some(hash));
    }
    let user = active.update(&txn).await?;
    audit::record(&txn, caller, Event::new("auth.login", "user", user.id).customer(user.customer_id)).await?;
    txn.commit().await?;
    Ok(user)
}

/// Sets a new password and ends the user's other sessions (the caller re-issues its own).
pub async fn change_password<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    user: users::Model,
    current: &str,
    new: &str,
) -> Result<users::Model> {
    let mut fields = Fields::new();
    fields.check("new_password", validate::password(new));
    fields.finish()?;
    if verify_password(current, user.password_hash.clone()).await? == crypto::PasswordCheck::Wrong {
        return Err(Error::invalid("current_password", "is not your current password"));
    }
    let hash = hash_password(new).await?;
    let _forget = Forget::user(user.id);
    let txn = db.begin().await?;
    let epoch = user.session_epoch + 1;
    let mut active: users::ActiveModel = user.into();
    active.password_hash = Set(Some(hash));
    active.session_epoch = Set(epoch);
    active.updated_at = Set(super::now());
    let user = active.update(&txn).await?;
    audit::record(&txn, caller, Event::new("user.password_change", "user", user.id).customer(user.customer_id)).await?;
    txn.commit().await?;
    Ok(user)
}

/// Issues a one-time set-password token (returned in clear once, stored hashed).
pub async fn issue_password_token(db: &impl ConnectionTrait, user_id: Uuid) -> Result<String> {
    let token = crypto::random_token("");
    password_tokens::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        token_hash: Set(crypto::hash_token(&token)),
        expires_at: Set(super::now() + Duration::hours(PASSWORD_LINK_TTL_HOURS)),
        used_at: Set(None),
        created_at: Set(super::now()),
    }
    .insert(db)
    .await?;
    Ok(token)
}

/// Redeems a set-password link: the token works once, before it expires.
pub async fn set_password_with_token<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    token: &str,
    password: &str,
) -> Result<users::Model> {
    let mut fields = Fields::new();
    fields.check("password", validate::password(password));
    fields.finish()?;
    let hash = hash_password(password).await?;
    let txn = db.begin().await?;
    let invalid = || Error::invalid("token", "this link is invalid, expired or already used");
    let link = password_tokens::Entity::find()
        .filter(password_tokens::Column::TokenHash.eq(crypto::hash_token(token)))
        .one(&txn)
        .await?
        .ok_or_else(invalid)?;
    if link.used_at.is_some() || link.expires_at < super::now() {
        return Err(invalid());
    }
    // Marking it used with a guard on `used_at IS NULL` makes two racing redemptions safe.
    let claimed = password_tokens::Entity::update_many()
        .col_expr(password_tokens::Column::UsedAt, sea_orm::sea_query::Expr::value(super::now()))
        .filter(password_tokens::Column::Id.eq(link.id))
        .filter(password_tokens::Column::UsedAt.is_null())
        .exec(&txn)
        .await?;
    if claimed.rows_affected != 1 {
        return Err(invalid());
    }
    let user = find(&txn, link.user_id).await?.filter(|u| !u.disabled).ok_or_else(invalid)?;
    let _forget = Forget::user(user.id);
    let epoch = user.session_epoch + 1;
    let mut active: users::ActiveModel = user.into();
    active.password_hash = Set(Some(hash));
    active.session_epoch = Set(epoch);
    active.updated_at = Set(super::now());
    let user = active.update(&txn).await?;
    let actor = Caller { actor: user.email.clone(), user_id: Some(user.id), ..caller.clone() };
    audit::record(&txn, &actor, Event::new("user.password_set", "user", user.id).customer(user.customer_id)).await?;
    txn.commit().await?;
    Ok(user)
}

/// A validation error on `password` unless it is the user's current password.
async fn require_password(user: &users::Model, password: &str) -> Result<()> {
    if verify_password(password, user.password_hash.clone()).await? == crypto::PasswordCheck::Wrong {
        return Err(Error::invalid("password", "is not your current password"));
    }
    Ok(())
}

/// Starts TOTP enrolment once the user confirmed their password: stores a new sealed secret
/// (not yet enabled) and returns the otpauth:// URI for an authenticator app.
pub async fn begin_totp(db: &impl ConnectionTrait, keys: &Keys, user: users::Model, password: &str) -> Result<String> {
    if user.totp_enabled {
        return Err(Error::Conflict("two-factor authentication is already enabled".into()));
    }
    require_password(&user, password).await?;
    let secret = totp::new_secret();
    let uri = totp::uri(&secret, &user.email)?;
    let sealed = keys.seal(&totp_context(user.id), &secret);
    let _forget = Forget::user(user.id);
    let mut active: users::ActiveModel = user.into();
    active.totp_secret = Set(Some(sealed));
    active.totp_last_step = Set(None);
    active.updated_at = Set(super::now());
    active.update(db).await?;
    Ok(uri)
}

/// Enables TOTP once the user proves their app has the secret.
pub async fn confirm_totp<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    keys: &Keys,
    caller: &Caller,
    user: users::Model,
    code: &str,
) -> Result<users::Model> {
    if user.totp_enabled {
        return Err(Error::Conflict("two-factor authentication is already enabled".into()));
    }
    if user.totp_secret.is_none() {
        return Err(Error::Conflict("start enrolment first (POST /api/v1/auth/totp/enroll)".into()));
    }
    let _forget = Forget::user(user.id);
    let txn = db.begin().await?;
    if !use_totp(&txn, keys, &user, code).await? {
        return Err(Error::invalid("code", "is not the current code from your authenticator app"));
    }
    let user = find(&txn, user.id).await?.ok_or(Error::NotFound("user"))?;
    let mut active: users::ActiveModel = user.into();
    active.totp_enabled = Set(true);
    active.updated_at = Set(super::now());
    let user = active.update(&txn).await?;
    audit::record(&txn, caller, Event::new("user.totp_enable", "user", user.id).customer(user.customer_id)).await?;
    txn.commit().await?;
    Ok(user)
}

/// Turns the user's own second factor off, confirmed with their password.
pub async fn disable_totp<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    user: users::Model,
    password: &str,
) -> Result<users::Model> {
    if !user.totp_enabled && user.totp_secret.is_none() {
        return Err(Error::Conflict("two-factor authentication is not enabled".into()));
    }
    require_password(&user, password).await?;
    let _forget = Forget::user(user.id);
    let txn = db.begin().await?;
    let user = clear_totp(&txn, user).await?;
    audit::record(&txn, caller, Event::new("user.totp_disable", "user", user.id).customer(user.customer_id)).await?;
    txn.commit().await?;
    Ok(user)
}

/// An administrator turns off the second factor of a customer's portal user who lost their
/// authenticator, confirmed with the administrator's own password. The user signs in with their
/// password alone and can set up a new authenticator.
pub async fn reset_totp<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    admin: &users::Model,
    admin_password: &str,
    customer_id: Uuid,
    user_id: Uuid,
) -> Result<users::Model> {
    caller.require_admin()?;
    let _forget = Forget::user(user_id);
    let txn = db.begin().await?;
    let user = access::users(caller)
        .filter(users::Column::Id.eq(user_id))
        .filter(users::Column::CustomerId.eq(customer_id))
        .one(&txn)
        .await?
        .ok_or(Error::NotFound("user"))?;
    if !user.totp_enabled && user.totp_secret.is_none() {
        return Err(Error::Conflict("two-factor authentication is not enabled for this user".into()));
    }
    require_password(admin, admin_password).await?;
    let user = clear_totp(&txn, user).await?;
    audit::record(
        &txn,
        caller,
        Event::new("user.totp_reset", "user", user.id).customer(user.customer_id).details(json!({"email": user.email})),
    )
    .await?;
    txn.commit().await?;
    Ok(user)
}

async fn clear_totp(db: &impl ConnectionTrait, user: users::Model) -> Result<users::Model> {
    let mut active: users::ActiveModel = user.into();
    active.totp_enabled = Set(false);
    active.totp_secret = Set(None);
    active.totp_last_step = Set(None);
    active.updated_at = Set(super::now());
    Ok(active.update(db).await?)
}

/// Checks a TOTP code against the user's sealed secret and uses it up: the step it belongs to
/// is remembered, and a code of that step or an earlier one is refused from then on. The
/// conditional update makes two racing uses of one code safe: only one of them wins.
pub async fn use_totp(db: &impl ConnectionTrait, keys: &Keys, user: &users::Model, code: &str) -> Result<bool> {
    let Some(sealed) = &user.totp_secret else {
        return Ok(false);
    };
    let secret = keys.open(&totp_context(user.id), sealed).map_err(|e| Error::Internal(e.into()))?;
    let Some(step) = totp::matching_step(&secret, &user.email, code)? else {
        return Ok(false);
    };
    let step = i64::try_from(step).map_err(|e| Error::Internal(e.into()))?;
    let _forget = Forget::user(user.id);
    let claimed = users::Entity::update_many()
        .col_expr(users::Column::TotpLastStep, sea_orm::sea_query::Expr::value(step))
        .filter(users::Column::Id.eq(user.id))
        .filter(
            sea_orm::Condition::any()
                .add(users::Column::TotpLastStep.is_null())
                .add(users::Column::TotpLastStep.lt(step)),
        )
        .exec(db)
        .await?;
    Ok(claimed.rows_affected == 1)
}

fn totp_context(user_id: Uuid) -> String {
    format!("totp:{user_id}")
}
