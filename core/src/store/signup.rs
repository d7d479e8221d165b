//! Signups from the hosting company's website: validated up front (so a bad or conflicting
//! signup creates nothing and gets a precise answer), then the customer, their portal user and
//! their site are created in one transaction together with the event record and the start of
//! their onboarding flow, which then brings the site up.
//!
//! Event ids are de-duplicated: the event row is inserted first, so a concurrent replay waits on
//! its primary key and then returns the first answer instead of doing anything twice.

use sea_orm::sea_query::{Alias, CommonTableExpression, Expr, InsertStatement, OnConflict, Query, WithClause};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbBackend, EntityTrait, QueryTrait, Statement, TransactionTrait};
use serde_json::{json, Value};
use uuid::Uuid;

use super::audit::{self, Event};
use super::batch::Batch;
use super::{customers, sites, users};
use crate::access::Caller;
use crate::config::Config;
use crate::crypto::Keys;
use crate::entities::{
    customers as customer_entity, site_domains, sites as site_entity, users as user_entity, webhook_events,
};
use crate::error::{Error, Fields, Result};
use crate::flows::{self, onboarding::Onboarding, onboarding::Subject};
use crate::types::Role;
use crate::validate;

const EMAIL_TAKEN: &str = "an account with this e-mail already exists";

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

/// What a signup conflicts with, read in the statement that claims its event id.
struct Conflicts {
    /// Whether this delivery wrote the event row (otherwise it is a replay).
    claimed: bool,
    /// The plan's site limit; `None`: no such plan.
    max_sites: Option<i32>,
    email_taken: bool,
    host_taken: bool,
}

/// Claims the event id and reads what the signup conflicts with. On PostgreSQL that is one
/// statement: the claim is its data-modifying part, so the reads see the database as it was
/// when the statement began; a row that appeared since (a concurrent signup with the same e-mail
/// or host) still stops this one at the unique index when it is inserted. On SQLite, two
/// statements sent in one call (the single writer sees its own claim; nothing can come between).
async fn claim(
    db: &impl ConnectionTrait,
    claim: InsertStatement,
    plan: &str,
    email: &str,
    host: &str,
) -> Result<Conflicts> {
    let backend = db.get_database_backend();
    let row = if backend == DbBackend::Postgres {
        let mut claim = claim;
        claim.returning_col(webhook_events::Column::Id);
        let mut select = Query::select();
        select
            .expr_as(Expr::cust("(SELECT count(*) FROM \"claim\")"), Alias::new("claimed"))
            .expr_as(Expr::cust_with_values("(SELECT max_sites FROM plans WHERE id = $1)", [plan]), Alias::new("max_sites"))
            .expr_as(
                Expr::cust_with_values(
                    "(EXISTS (SELECT 1 FROM customers WHERE email = $1) OR EXISTS (SELECT 1 FROM users WHERE email = $1))",
                    [email],
                ),
                Alias::new("email_taken"),
            )
            .expr_as(
                Expr::cust_with_values("EXISTS (SELECT 1 FROM site_domains WHERE domain = $1)", [host]),
                Alias::new("host_taken"),
            );
        let with = WithClause::new()
            .cte(CommonTableExpression::new().table_name(Alias::new("claim")).query(claim).to_owned())
            .to_owned()
            .query(select);
        db.query_one(backend.build(&with)).await?
    } else {
        // The claim and the reads in one call too: `changes()` is the number of rows the claim
        // just inserted on this connection (0 when the id was there: DO NOTHING).
        let insert = backend.build(&claim);
        let sql = format!(
            "{};\nSELECT changes() AS claimed, (SELECT max_sites FROM plans WHERE id = ?) AS max_sites,
                    (EXISTS (SELECT 1 FROM customers WHERE email = ?)
                     OR EXISTS (SELECT 1 FROM users WHERE email = ?)) AS email_taken,
                    EXISTS (SELECT 1 FROM site_domains WHERE domain = ?) AS host_taken",
            insert.sql
        );
        let mut values: Vec<sea_orm::Value> = insert.values.map(|v| v.0).unwrap_or_default();
        values.extend([plan.into(), email.into(), email.into(), host.into()]);
        db.query_one(Statement::from_sql_and_values(backend, sql, values)).await?
    };
    let row = row.ok_or_else(|| Error::Internal(anyhow::anyhow!("the signup claim returned no row")))?;
    Ok(Conflicts {
        claimed: row.try_get::<i64>("", "claimed")? == 1,
        max_sites: row.try_get("", "max_sites")?,
        email_taken: row.try_get("", "email_taken")?,
        host_taken: row.try_get("", "host_taken")?,
    })
}

/// Validates a signup, then in one transaction creates its customer, portal user and site,
/// starts their onboarding flow and stores the answer `respond` makes (so a replay gets the same
/// answer); a replayed event id gets the first answer instead and creates nothing.
///
/// On PostgreSQL the hot path is four round trips: BEGIN; one statement that claims the event
/// id with the event row (which already holds the answer, since every id is chosen here) and
/// reads the plan and every conflict; one statement with every row (customer, user, site,
/// domain, the three audit entries, the flow run, its steps, its driver job and the workers'
/// wake-up: see [`Batch`]); COMMIT. No savepoints: nothing here is undone on its own, and any
/// error rolls the whole transaction back.
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
    caller.require_admin()?;
    let checked = check(config, &signup).and_then(|(site_name, host)| {
        let mut fields = Fields::new();
        let email = fields.check("email", validate::email(&signup.email));
        let company = fields.check("company_name", validate::company_name(&signup.company_name));
        fields.check("name", validate::site_name(&site_name));
        let image = signup.template.clone().unwrap_or_else(|| sites::DEFAULT_IMAGE.to_owned());
        fields.check("image", validate::image_ref(&image));
        let domains = sites::check_domains(&mut fields, std::slice::from_ref(&host));
        fields.finish()?;
        match (email, company) {
            (Some(email), Some(company)) => Ok((site_name, host, email, company, image, domains)),
            _ => Err(Error::invalid("email", "is invalid")),
        }
    });
    let (site_name, host, email, company_name, image, domains) = match checked {
        Ok(checked) => checked,
        // A replay is answered as the first delivery was, whatever this copy of it says.
        Err(err) => return replay_of(db, &signup.event_id).await?.ok_or(err),
    };

    // Every id is chosen here, so the answer is known before anything is written and the event
    // row that claims the id is written once, answer included.
    let accepted = Accepted {
        customer_id: Uuid::now_v7(),
        user_id: Uuid::now_v7(),
        site_id: Uuid::now_v7(),
        host: host.clone(),
        flow_run_id: Uuid::now_v7(),
    };
    let response = respond(&accepted)?;
    let now = super::now();

    let txn = db.begin().await?;
    // The claim: a concurrent delivery of the same id waits here on the primary key until this
    // transaction ends, then inserts nothing and answers with what this one stored.
    let mut claim_row = Query::insert();
    claim_row
        .into_table(webhook_events::Entity)
        .columns([
            webhook_events::Column::Id,
            webhook_events::Column::Kind,
            webhook_events::Column::ReceivedAt,
            webhook_events::Column::CustomerId,
            webhook_events::Column::StatusCode,
            webhook_events::Column::Response,
        ])
        .values_panic([
            signup.event_id.clone().into(),
            "signup".into(),
            now.into(),
            Some(accepted.customer_id).into(),
            202i32.into(),
            response.clone().into(),
        ])
        .on_conflict(OnConflict::column(webhook_events::Column::Id).do_nothing().to_owned());
    // Conflicts are checked before anything else is created, so the answer names the real
    // problem (an unknown plan first, as before anything was written).
    let found = claim(&txn, claim_row, &signup.plan, &email, &host).await?;
    if !found.claimed {
        drop(txn);
        return replay_of(db, &signup.event_id)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("signup event {} vanished", signup.event_id)));
    }
    let Some(max_sites) = found.max_sites else {
        return Err(Error::invalid("plan", format!("unknown plan `{}`", signup.plan)));
    };
    if found.email_taken {
        return Err(Error::Conflict(EMAIL_TAKEN.into()));
    }
    if found.host_taken {
        let field = if signup.subdomain.is_some() { "subdomain" } else { "domain" };
        return Err(Error::Conflict(format!("{field} {host} is already taken")));
    }
    // A brand-new customer has no sites yet: their plan must allow one.
    if max_sites < 1 {
        return Err(Error::invalid(
            "customer_id",
            format!("plan `{}` allows at most {max_sites} site(s); this customer has 0", signup.plan),
        ));
    }

    // Every row in one statement on PostgreSQL (`Batch`).
    let mut batch = Batch::new();
    batch.insert(
        customer_entity::Entity::insert(customers::new_row(
            accepted.customer_id,
            email.clone(),
            company_name,
            signup.plan.clone(),
            now,
        ))
        .into_query(),
    );
    let mut user = users::new_user(email.clone(), Role::Customer, Some(accepted.customer_id), None);
    user.id = Set(accepted.user_id);
    batch.insert(user_entity::Entity::insert(user).into_query());
    let site = sites::new_row(
        keys,
        accepted.site_id,
        accepted.customer_id,
        site_name.clone(),
        image.clone(),
        &Default::default(),
        now,
    )?;
    batch.insert(site_entity::Entity::insert(site).into_query());
    let domain_rows = domains.iter().enumerate().map(|(i, d)| site_domains::ActiveModel {
        domain: Set(d.clone()),
        site_id: Set(accepted.site_id),
        position: Set(i as i32),
        created_at: Set(now),
    });
    batch.insert(site_domains::Entity::insert_many(domain_rows).into_query());
    // The same three entries the admin operations write: customer, user, site.
    let audit = audit::insert_statement(
        caller,
        vec![
            Event::new("customer.create", "customer", accepted.customer_id)
                .customer(Some(accepted.customer_id))
                .details(json!({"email": email, "plan": signup.plan})),
            Event::new("user.create", "user", accepted.user_id)
                .customer(Some(accepted.customer_id))
                .details(json!({"email": email, "role": "customer", "set_password_link": false})),
            Event::new("site.create", "site", accepted.site_id)
                .customer(Some(accepted.customer_id))
                .details(json!({"name": site_name, "image": image, "domains": domains})),
        ],
    );
    batch.insert(audit.ok_or_else(|| Error::Internal(anyhow::anyhow!("no audit entries for a signup")))?);
    let subject = Subject {
        customer_id: accepted.customer_id,
        user_id: accepted.user_id,
        site_id: accepted.site_id,
        host: accepted.host.clone(),
    };
    flows::start_in::<Onboarding>(&mut batch, accepted.flow_run_id, &subject, Some(accepted.customer_id))?;
    // A concurrent signup with the same e-mail or host waits on a unique index, then fails here;
    // the index it hit says which.
    batch.exec(&txn).await.map_err(|e| match e.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(m)) if m.contains("site_domains") => {
            Error::Conflict(format!("domain {host} is already in use"))
        }
        Some(sea_orm::SqlErr::UniqueConstraintViolation(m)) if m.contains("email") => {
            Error::Conflict(EMAIL_TAKEN.into())
        }
        _ => e.into(),
    })?;
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
