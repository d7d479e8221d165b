//! Onboarding a customer who signed up on the website: started by the signup webhook in the
//! signup's own transaction, so the customer and their onboarding commit together.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Flow;

pub struct Onboarding;

/// What one onboarding run is about: the flow's input.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Subject {
    pub customer_id: Uuid,
    pub user_id: Uuid,
    pub site_id: Uuid,
    /// The site's host name (validated, lowercase ASCII).
    pub host: String,
}

impl Flow for Onboarding {
    const NAME: &'static str = "onboarding";
    /// Step 1 (`customer`) happened in the signup's own transaction; it is recorded so the
    /// timeline shows the whole journey.
    const STEPS: &'static [&'static str] = &["customer", "site", "dns", "certificate", "health", "welcome", "finish"];
    /// Each attempt resumes at the failed step, and a crashed worker costs one: onboarding waits
    /// on several outside systems (Docker, DNS, the CA, SMTP), so it gets more than the default.
    const MAX_ATTEMPTS: i32 = 12;
    type Input = Subject;
}
