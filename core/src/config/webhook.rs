//! The signup webhook: the secrets its signatures are checked with.

use super::{Mask, Raw, Secret, Setting};

/// This area's settings, in the order `config check` prints them.
pub const SETTINGS: &[Setting] = &[WEBHOOK_SECRET, WEBHOOK_SECRET_PREVIOUS];

const WEBHOOK_SECRET: Setting = Setting {
    key: "webhook_secret",
    default: "(none)",
    mask: Mask::Secret,
    about: "HMAC key of the signup webhook; it answers 503 until this is set",
    value: |c| c.webhook.secret.as_ref().map(|s| s.expose().to_owned()),
};
const WEBHOOK_SECRET_PREVIOUS: Setting = Setting {
    key: "webhook_secret_previous",
    default: "(none)",
    mask: Mask::Secret,
    about: "also accepted, while rotating secrets",
    value: |c| c.webhook.secret_previous.as_ref().map(|s| s.expose().to_owned()),
};

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub secret: Option<Secret>,
    pub secret_previous: Option<Secret>,
}

impl WebhookConfig {
    pub(super) fn load(raw: &mut Raw) -> Self {
        let mut secret = |setting: &Setting| {
            let value = raw.get(setting);
            if value.as_ref().is_some_and(|v| v.len() < 16) {
                raw.problem(setting, "must be at least 16 characters");
            }
            value.map(Secret)
        };
        WebhookConfig { secret: secret(&WEBHOOK_SECRET), secret_previous: secret(&WEBHOOK_SECRET_PREVIOUS) }
    }
}
