//! Mail: the SMTP server Berth sends through and the sender it writes as.

use super::{Mask, Raw, Secret, Setting};

/// This area's settings, in the order `config check` prints them.
pub const SETTINGS: &[Setting] = &[SMTP_URL, MAIL_FROM];

const SMTP_URL: Setting = Setting {
    key: "smtp_url",
    default: "(none: mail goes to $BERTH_DATA_DIR/outbox)",
    mask: Mask::UrlPassword,
    about: "`smtp://host:port`, `smtp://user:pw@host:587?tls=required` or `smtps://…`",
    value: |c| c.mail.smtp_url.as_ref().map(|u| u.expose().to_owned()),
};
const MAIL_FROM: Setting = Setting {
    key: "mail_from",
    default: "Berth <berth@localhost>",
    mask: Mask::Plain,
    about: "the sender of every message",
    value: |c| Some(c.mail.from.clone()),
};

#[derive(Debug, Clone)]
pub struct MailConfig {
    /// The SMTP server; `None`: messages are written to `$BERTH_DATA_DIR/outbox/` instead.
    pub smtp_url: Option<Secret>,
    pub from: String,
}

impl MailConfig {
    pub(super) fn load(raw: &mut Raw) -> Self {
        let smtp_url = raw.get(&SMTP_URL);
        if let Some(url) = &smtp_url {
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                raw.problem(&SMTP_URL, "must start with smtp:// or smtps://");
            }
        }
        let from = raw.get_or_default(&MAIL_FROM);
        if !from.contains('@') || from.contains(['\r', '\n']) {
            raw.problem(&MAIL_FROM, "must be an address like `Berth <noreply@example.com>`");
        }
        MailConfig { smtp_url: smtp_url.map(Secret), from }
    }
}
