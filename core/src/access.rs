//! Who is asking, and what they may see.
//!
//! Every data-access function in [`crate::store`] takes a [`Caller`]. Tenant scoping is applied
//! here, once, by [`Scoped::scoped`] on the query itself: a customer user's query for sites gets
//! `customer_id = <theirs>` whatever the handler asked for, so another tenant's rows are simply
//! not found (404), never "forbidden".

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Select};
use uuid::Uuid;

use crate::entities::{
    alerts, backup_checks, backup_drills, backups, customers, flow_runs, incidents, jobs, notification_channels,
    site_volumes, sites, users,
};
use crate::error::{Error, Result};
use crate::types::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Administrators and Berth itself see every tenant.
    All,
    /// A customer user sees only their own customer's objects.
    Customer(Uuid),
}

#[derive(Debug, Clone)]
pub struct Caller {
    /// The acting user; `None` for Berth itself (CLI, bootstrap, workers).
    pub user_id: Option<Uuid>,
    /// How the audit log names the actor: an e-mail, or `cli` / `system`.
    pub actor: String,
    pub scope: Scope,
    pub ip: Option<String>,
    pub request_id: Option<String>,
}

impl Caller {
    pub fn user(user: &users::Model) -> Self {
        let scope = match (user.role, user.customer_id) {
            (Role::Admin, _) => Scope::All,
            (Role::Customer, Some(c)) => Scope::Customer(c),
            // A customer user without a customer would be a data bug; it sees nothing.
            (Role::Customer, None) => Scope::Customer(Uuid::nil()),
        };
        Self { user_id: Some(user.id), actor: user.email.clone(), scope, ip: None, request_id: None }
    }

    /// Berth acting on its own behalf (CLI commands, bootstrap, workers).
    pub fn system(actor: &str) -> Self {
        Self { user_id: None, actor: actor.to_owned(), scope: Scope::All, ip: None, request_id: None }
    }

    pub fn with_request(mut self, ip: Option<String>, request_id: Option<String>) -> Self {
        self.ip = ip;
        self.request_id = request_id;
        self
    }

    pub fn is_admin(&self) -> bool {
        self.scope == Scope::All
    }

    pub fn require_admin(&self) -> Result<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(Error::Forbidden)
        }
    }

    /// The customer a customer user acts for; `None` for admins.
    pub fn own_customer(&self) -> Option<Uuid> {
        match self.scope {
            Scope::All => None,
            Scope::Customer(c) => Some(c),
        }
    }
}

/// An entity whose rows belong to one customer, named by one column.
pub trait CustomerOwned: EntityTrait {
    /// The column holding the owning customer's id.
    const OWNER: Self::Column;
}

impl CustomerOwned for sites::Entity {
    const OWNER: sites::Column = sites::Column::CustomerId;
}

impl CustomerOwned for site_volumes::Entity {
    const OWNER: site_volumes::Column = site_volumes::Column::CustomerId;
}

impl CustomerOwned for customers::Entity {
    /// A customer owns itself.
    const OWNER: customers::Column = customers::Column::Id;
}

impl CustomerOwned for users::Entity {
    const OWNER: users::Column = users::Column::CustomerId;
}

/// Jobs without a customer are Berth's own (housekeeping, schedules): admins only.
impl CustomerOwned for jobs::Entity {
    const OWNER: jobs::Column = jobs::Column::CustomerId;
}

impl CustomerOwned for flow_runs::Entity {
    const OWNER: flow_runs::Column = flow_runs::Column::CustomerId;
}

impl CustomerOwned for alerts::Entity {
    const OWNER: alerts::Column = alerts::Column::CustomerId;
}

impl CustomerOwned for incidents::Entity {
    const OWNER: incidents::Column = incidents::Column::CustomerId;
}

/// Channels without a customer are the administrators': admins only.
impl CustomerOwned for notification_channels::Entity {
    const OWNER: notification_channels::Column = notification_channels::Column::CustomerId;
}

impl CustomerOwned for backups::Entity {
    const OWNER: backups::Column = backups::Column::CustomerId;
}

impl CustomerOwned for backup_checks::Entity {
    const OWNER: backup_checks::Column = backup_checks::Column::CustomerId;
}

impl CustomerOwned for backup_drills::Entity {
    const OWNER: backup_drills::Column = backup_drills::Column::CustomerId;
}

/// Restricts a query to the rows the caller may see.
pub trait Scoped {
    fn scoped(self, caller: &Caller) -> Self;
}

impl<E: CustomerOwned> Scoped for Select<E> {
    fn scoped(self, caller: &Caller) -> Self {
        match caller.scope {
            Scope::All => self,
            Scope::Customer(c) => self.filter(E::OWNER.eq(c)),
        }
    }
}

/// Shorthands that start every scoped query, so no handler builds an unscoped one by habit.
pub fn sites(caller: &Caller) -> Select<sites::Entity> {
    sites::Entity::find().scoped(caller)
}

pub fn site_volumes(caller: &Caller) -> Select<site_volumes::Entity> {
    site_volumes::Entity::find().scoped(caller)
}

pub fn customers(caller: &Caller) -> Select<customers::Entity> {
    customers::Entity::find().scoped(caller)
}

pub fn users(caller: &Caller) -> Select<users::Entity> {
    users::Entity::find().scoped(caller)
}

pub fn backups(caller: &Caller) -> Select<backups::Entity> {
    backups::Entity::find().scoped(caller)
}

pub fn backup_checks(caller: &Caller) -> Select<backup_checks::Entity> {
    backup_checks::Entity::find().scoped(caller)
}

pub fn backup_drills(caller: &Caller) -> Select<backup_drills::Entity> {
    backup_drills::Entity::find().scoped(caller)
}

pub fn jobs(caller: &Caller) -> Select<jobs::Entity> {
    jobs::Entity::find().scoped(caller)
}

pub fn flow_runs(caller: &Caller) -> Select<flow_runs::Entity> {
    flow_runs::Entity::find().scoped(caller)
}
