//! Signups from the hosting company's website: validated up front (so a bad or conflicting
//! signup creates nothing and gets a precise answer), then the customer, their portal user and
//! their site are created in one transaction together with the event record and the start of
//! their onboarding flow, which then brings the site up.
//!
//! Event ids are de-duplicated: the event row is inserted first, so a concurrent replay waits on
//! its primary key and then returns the first answer instead of doing anything twice.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait,
};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{customers, plans, sites, users};
use crate::access::Caller;
use crate::config::Config;
use crate::crypto::Keys;
use crate::entities::{customers as customer_entity, site_domains, users as user_entity, webhook_events};
use crate::error::{Error, Fields, Result};
use crate::flows::{self, onboarding::Onboarding, onboarding::Subject};
use crate::validate;

/// The signup as the website sends it (already parsed; unknown fields were refused).
#[derive(Debug, Clone)]
pub struct Signup {
    pub event_id: String,
    pub email: String,
    pub company_name: String,
    pub plan: String,
    /// A name under BERTH_BASE_DOMAIN ...
    pub subdomain: Option<String>,
    /// ... or the customer's own domain; exactly one of the two.
    pub domain: Option<String>,
    /// The site image; the static site image when absent.
    pub template: Option<String>,
}

/// What the first delivery of an event created.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub customer_id: Uuid,
    pub user_id: Uuid,
    pub site_id: Uuid,
    pub host: String,
    /// The onboarding flow run.
    pub flow_run_id: Uuid,
}

/// The answer to a delivery: stored with the first one, returned again for every replay.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// First delivery: everything was created and committed.
    New {
        accepted: Accepted,
        response: Value,
    },
    Replay {
        status_code: u16,
        response: Value,
    },
}

/// Checks every field and works out the site's host name; nothing is written.
fn check(config: &Config, signup: &Signup) -> Result<(String, String)> {
    let mut fields = Fields::new();
    let id_ok = !signup.event_id.is_empty()
        && signup.event_id.len() <= 128
        && signup.event_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if !id_ok {
        fields.push("id", "must be 1 to 128 letters, digits, '-', '_', '.' or ':'");
    }
    fields.check("email", validate::email(&signup.email));
    fields.check("company_name", validate::company_name(&signup.company_name));
    if let Some(t) = &signup.template {
        fields.check("template", validate::image_ref(t));
    }
    let host = match (&signup.subdomain, &signup.domain) {
        (Some(sub), None) => match (&config.dns.base_domain, validate::site_name(sub)) {
            (None, _) => {
                fields.push("subdomain", "is not offered here (no BERTH_BASE_DOMAIN); send `domain` instead");
                None
            }
            (Some(_), Err(m)) => {
                fields.push("subdomain", m);
                None
            }
            (Some(base), Ok(())) => Some((sub.clone(), format!("{sub}.{base}"))),
        },
        (None, Some(domain)) => fields.check("domain", validate::domain(domain)).map(|d| (site_name_for(&d), d)),
        (Some(_), Some(_)) => {
            fields.push("domain", "send either `subdomain` or `domain`, not both");
            None
        }
        (None, None) => {
            fields.push("subdomain", "send `subdomain` or `domain`");
            None
        }
    };
    fields.finish()?;
    host.ok_or_else(|| Error::invalid("domain", "is required"))
}

/// A site name from a domain's first label (`shop.example.com` → `shop`).
fn site_name_for(domain: &str) -> String {
    let label = domain.split('.').next().unwrap_or_default();
    let name: String = label.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(63).collect();
    let name = name.trim_matches('-').to_owned();
    if name.is_empty() {
        "site".to_owned()
    } else {
        name
    }
}

async fn replay_of(db: &impl ConnectionTrait, event_id: &str) -> Result<Option<Outcome>> {
    Ok(webhook_events::Entity::find_by_id(event_id.to_owned())
        .one(db)
        .await?
        .map(|e| Outcome::Replay { status_code: u16::try_from(e.status_code).unwrap_or(202), response: e.response }))
}

/// Validates a signup, then in one transaction creates its customer, portal user and site,
/// starts their onboarding flow and stores the answer `respond` makes (so a replay gets the same
/// answer); a replayed event id gets the first answer instead and creates nothing.
pub async fn accept<C>(
    db: &C,
    keys: &Keys,
    config: &Config,
    caller: &Caller,
    signup: Signup,
    respond: impl FnOnce(&Accepted) -> Result<Value>,
) -> Result<Outcome>
where
    C: ConnectionTrait + TransactionTrait,
{
    if let Some(replay) = replay_of(db, &signup.event_id).await? {
        return Ok(replay);
    }
    let (site_name, host) = check(config, &signup)?;
    if plans::find(db, &signup.plan).await?.is_none() {
        return Err(Error::invalid("plan", format!("unknown plan `{}`", signup.plan)));
    }
    let email = validate::email(&signup.email).map_err(|m| Error::invalid("email", m))?;

    let txn = db.begin().await?;
    let claimed = webhook_events::ActiveModel {
        id: Set(signup.event_id.clone()),
        kind: Set("signup".into()),
        received_at: Set(super::now()),
        customer_id: Set(None),
        status_code: Set(202),
        response: Set(json!({})),
    }
    .insert(&txn)
    .await;
    if let Err(err) = claimed {
        // Another delivery of this event got here first; its answer is the answer.
        drop(txn);
        if let Some(replay) = replay_of(db, &signup.event_id).await? {
            return Ok(replay);
        }
        return Err(err.into());
    }
    // Conflicts are checked before anything is created, so the answer names the real problem.
    let email_taken = customer_entity::Entity::find()
        .filter(customer_entity::Column::Email.eq(email.clone()))
        .one(&txn)
        .await?
        .is_some()
        || user_entity::Entity::find().filter(user_entity::Column::Email.eq(email.clone())).one(&txn).await?.is_some();
    if email_taken {
        return Err(Error::Conflict("an account with this e-mail already exists".into()));
    }
    if site_domains::Entity::find_by_id(host.clone()).one(&txn).await?.is_some() {
        let field = if signup.subdomain.is_some() { "subdomain" } else { "domain" };
        return Err(Error::Conflict(format!("{field} {host} is already taken")));
    }

    let customer = customers::create(
        &txn,
        caller,
        customers::NewCustomer {
            email: email.clone(),
            company_name: signup.company_name.clone(),
            plan: signup.plan.clone(),
        },
    )
    .await?;
    let user = users::create_signup_user(&txn, caller, customer.id, &email).await?;
    let site = sites::create(
        &txn,
        keys,
        caller,
        sites::NewSite {
            customer_id: Some(customer.id),
            name: site_name,
            image: signup.template.clone(),
            domains: vec![host.clone()],
            env: Default::default(),
        },
    )
    .await?;
    let subject = Subject { customer_id: customer.id, user_id: user.id, site_id: site.model.id, host: host.clone() };
    let run = flows::start::<Onboarding>(&txn, &subject, Some(customer.id)).await?;
    let accepted =
        Accepted { customer_id: customer.id, user_id: user.id, site_id: site.model.id, host, flow_run_id: run.id };
    let response = respond(&accepted)?;
    webhook_events::Entity::update_many()
        .col_expr(webhook_events::Column::CustomerId, Expr::value(accepted.customer_id))
        .col_expr(webhook_events::Column::Response, Expr::value(response.clone()))
        .filter(webhook_events::Column::Id.eq(signup.event_id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(Outcome::New { accepted, response })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_names_from_domains() {
        assert_eq!(site_name_for("shop.example.com"), "shop");
        assert_eq!(site_name_for("xn--bcher-kva.example"), "xn--bcher-kva");
        assert_eq!(site_name_for("-.example"), "site");
    }
}
