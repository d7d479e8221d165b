//! Onboarding a customer who signed up on the website. The signup webhook has already created
//! the customer, their portal user and their site (step 1, in its own transaction); these are
//! the steps after it. Each step is idempotent — running it again after a crash converges to
//! the same single effect — and returns a one-line summary for the flow's timeline.

pub mod flow;
pub mod steps;

use std::sync::Arc;

use berth_core::config::Config;
use berth_core::crypto::Keys;
use berth_integrations::dns::{self, DnsProvider};
use berth_integrations::mail::{self, Mailer};
use berth_integrations::tls::{AcmeIssuer, CertStore, DirChallengeStore};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What one onboarding run is about: the flow's input.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Subject {
    pub customer_id: Uuid,
    pub user_id: Uuid,
    pub site_id: Uuid,
    /// The site's host name (validated, lowercase ASCII).
    pub host: String,
}

/// The outside services the steps talk to.
#[derive(Clone)]
pub struct Edges {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub keys: Arc<Keys>,
    pub dns: Arc<dyn DnsProvider>,
    pub mailer: Arc<dyn Mailer>,
    pub acme: Option<Arc<AcmeIssuer>>,
    pub challenges: Arc<DirChallengeStore>,
    pub certs: Arc<CertStore>,
    /// Asks the reconciler for a pass now (so a new certificate is served at once); `None`
    /// without a container runtime.
    pub wake_reconciler: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl Edges {
    pub fn from_config(db: DatabaseConnection, config: Arc<Config>, keys: Arc<Keys>) -> anyhow::Result<Self> {
        let mailer = mail::from_config(&config).map_err(|e| anyhow::anyhow!("mail is misconfigured: {e}"))?;
        Ok(Self {
            dns: Arc::from(dns::from_config(&config)),
            mailer: Arc::from(mailer),
            acme: AcmeIssuer::from_config(&config),
            challenges: Arc::new(DirChallengeStore::new(config.acme_challenge_dir())),
            certs: Arc::new(CertStore::new(config.tls_dir())),
            db,
            config,
            keys,
            wake_reconciler: None,
        })
    }
}
