//! Outgoing mail. SMTP through lettre in production; without `BERTH_SMTP_URL` (the embedded
//! default) messages are written as `.eml` files into `$BERTH_DATA_DIR/outbox/`, where an
//! operator can read them. Bodies come from askama templates (HTML escaped, plain text beside).

use std::path::PathBuf;

use askama::Template;
use async_trait::async_trait;
use berth_core::config::Config;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address `{0}`")]
    Address(String),
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("SMTP delivery failed: {0}")]
    Smtp(String),
    #[error("cannot write to the outbox: {0}")]
    Outbox(String),
    #[error("template failed: {0}")]
    Template(String),
}

/// A message ready to send.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Stable across retries (`<flow step id@berth>`), so a resent message is recognisably the
    /// same one and the outbox never holds two copies.
    pub message_id: String,
}

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
    fn name(&self) -> &'static str;
}

pub fn from_config(config: &Config) -> Result<Box<dyn Mailer>, MailError> {
    let from: Mailbox = config.mail.from.parse().map_err(|_| MailError::Address(config.mail.from.clone()))?;
    match &config.mail.smtp_url {
        Some(url) => {
            let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                .map_err(|e| MailError::Smtp(e.to_string()))?
                .timeout(Some(std::time::Duration::from_secs(15)))
                .build();
            Ok(Box::new(SmtpMailer { transport, from }))
        }
        None => Ok(Box::new(OutboxMailer { dir: config.server.data_dir.join("outbox"), from })),
    }
}

fn build(from: &Mailbox, mail: &Mail) -> Result<Message, MailError> {
    let to: Mailbox = mail.to.parse().map_err(|_| MailError::Address(mail.to.clone()))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(&mail.subject)
        .message_id(Some(mail.message_id.clone()))
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(mail.text.clone()))
                .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(mail.html.clone())),
        )
        .map_err(|e| MailError::Build(e.to_string()))
}

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = build(&self.from, mail)?;
        self.transport.send(message).await.map_err(|e| MailError::Smtp(e.to_string()))?;
        Ok(())
    }
    fn name(&self) -> &'static str {
        "smtp"
    }
}

pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = build(&self.from, mail)?;
        // The file name comes from the message id, so a retried send overwrites, never doubles.
        let name: String = mail.message_id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        let path = self.dir.join(format!("{name}.eml"));
        let dir = self.dir.clone();
        let file = path.clone();
        tokio::task::spawn_blocking(move || write_private(&dir, &file, &message.formatted()))
            .await
            .map_err(|e| MailError::Outbox(e.to_string()))?
            .map_err(|e| MailError::Outbox(e.to_string()))?;
        tracing::info!(to = %mail.to, path = %path.display(), "Mail written to the outbox (no BERTH_SMTP_URL)");
        Ok(())
    }
    fn name(&self) -> &'static str {
        "outbox"
    }
}

/// Writes one message into the outbox. Messages hold working set-password links, so the
/// outbox is Berth's user's alone: the directory 0700, each file 0600 (both tightened when an
/// older Berth left them readable), written under a temporary name and renamed into place so a
/// reader never sees half a message.
fn write_private(dir: &std::path::Path, path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    #[cfg(not(unix))]
    builder.create(dir)?;
    let tmp = path.with_extension(format!("eml.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// What the welcome e-mail says.
pub struct Welcome<'a> {
    pub to: &'a str,
    pub company_name: &'a str,
    pub site_url: &'a str,
    pub set_password_url: &'a str,
    pub portal_url: &'a str,
    pub message_id: String,
}

#[derive(Template)]
#[template(path = "welcome.txt")]
struct WelcomeText<'a> {
    mail: &'a Welcome<'a>,
}

#[derive(Template)]
#[template(path = "welcome.html")]
struct WelcomeHtml<'a> {
    mail: &'a Welcome<'a>,
}

pub fn welcome(w: Welcome<'_>) -> Result<Mail, MailError> {
    let text = WelcomeText { mail: &w }.render().map_err(|e| MailError::Template(e.to_string()))?;
    let html = WelcomeHtml { mail: &w }.render().map_err(|e| MailError::Template(e.to_string()))?;
    Ok(Mail {
        to: w.to.to_owned(),
        subject: format!("Welcome to your hosting, {}", w.company_name),
        text,
        html,
        message_id: w.message_id,
    })
}

/// What an alert notice says: an incident fired or resolved.
pub struct AlertNotice<'a> {
    pub to: &'a str,
    pub resolved: bool,
    /// A firing warning reached critical.
    pub escalated: bool,
    /// `warning` or `critical` (for a firing).
    pub severity: &'a str,
    /// One line: "shop.example is down".
    pub summary: &'a str,
    pub site_name: &'a str,
    pub metric: &'a str,
    /// RFC 3339.
    pub at: &'a str,
    pub incident_url: &'a str,
    pub fingerprint: &'a str,
    pub message_id: String,
}

#[derive(Template)]
#[template(path = "alert.txt")]
struct AlertText<'a> {
    mail: &'a AlertNotice<'a>,
}

#[derive(Template)]
#[template(path = "alert.html")]
struct AlertHtml<'a> {
    mail: &'a AlertNotice<'a>,
}

pub fn alert(n: AlertNotice<'_>) -> Result<Mail, MailError> {
    let text = AlertText { mail: &n }.render().map_err(|e| MailError::Template(e.to_string()))?;
    let html = AlertHtml { mail: &n }.render().map_err(|e| MailError::Template(e.to_string()))?;
    let subject = if n.resolved {
        format!("[Resolved] {}", n.summary)
    } else if n.escalated {
        format!("[{}] {} (escalated from warning)", n.severity.to_uppercase(), n.summary)
    } else {
        format!("[{}] {}", n.severity.to_uppercase(), n.summary)
    };
    Ok(Mail { to: n.to.to_owned(), subject, text, html, message_id: n.message_id })
}

/// One site of a grouped alert notice.
#[derive(Debug, Clone)]
pub struct GroupLine {
    pub site_name: String,
    /// `warning` or `critical`.
    pub severity: String,
    pub summary: String,
    pub incident_url: String,
}

/// Many sites that fired (or resolved) in the same evaluation round, in one message.
#[derive(Debug, Clone)]
pub struct AlertGroupNotice<'a> {
    pub to: &'a str,
    pub resolved: bool,
    /// The highest severity among the lines (for a firing).
    pub severity: &'a str,
    /// RFC 3339.
    pub at: &'a str,
    pub lines: &'a [GroupLine],
    pub message_id: String,
}

#[derive(Template)]
#[template(path = "alert_group.txt")]
struct AlertGroupText<'a> {
    mail: &'a AlertGroupNotice<'a>,
}

#[derive(Template)]
#[template(path = "alert_group.html")]
struct AlertGroupHtml<'a> {
    mail: &'a AlertGroupNotice<'a>,
}

pub fn alert_group(n: AlertGroupNotice<'_>) -> Result<Mail, MailError> {
    let text = AlertGroupText { mail: &n }.render().map_err(|e| MailError::Template(e.to_string()))?;
    let html = AlertGroupHtml { mail: &n }.render().map_err(|e| MailError::Template(e.to_string()))?;
    let count = n.lines.len();
    let subject = if n.resolved {
        format!("[Resolved] {count} sites")
    } else {
        format!("[{}] {count} sites need attention", n.severity.to_uppercase())
    };
    Ok(Mail { to: n.to.to_owned(), subject, text, html, message_id: n.message_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welcome_escapes_html_and_keeps_text_plain() {
        let mail = welcome(Welcome {
            to: "a@b.example",
            company_name: "Tom & <Jerry>",
            site_url: "https://shop.hosting.example",
            set_password_url: "https://panel.example/set-password?token=abc",
            portal_url: "https://panel.example/portal",
            message_id: "<x@berth>".into(),
        })
        .expect("renders");
        assert!(mail.html.contains("Tom &#38; &#60;Jerry&#62;"), "{}", mail.html);
        assert!(!mail.html.contains("<Jerry>") && !mail.html.contains("Tom & "));
        assert!(mail.text.contains("Tom & <Jerry>"));
        assert!(mail.text.contains("https://panel.example/set-password?token=abc"));
        let from: Mailbox = "Berth <berth@localhost>".parse().expect("mailbox");
        let raw = String::from_utf8(build(&from, &mail).expect("builds").formatted()).expect("utf8");
        assert!(raw.contains("Message-ID: <x@berth>"), "{raw}");
    }
}
