//! Mail through a real SMTP server, and the outbox of the embedded default.

use berth_core::config::Config;
use berth_integrations::mail::{self, Welcome};

use crate::support::services::SmtpSink;

fn config(vars: &[(&str, &str)]) -> Config {
    Config::load(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())).expect("valid config")
}

fn welcome(id: &str) -> mail::Mail {
    mail::welcome(Welcome {
        to: "owner@shop.example",
        company_name: "Shop & Co",
        site_url: "http://shop.hosting.test",
        set_password_url: "http://panel.test/set-password?token=abc123",
        portal_url: "http://panel.test/portal",
        message_id: format!("<{id}@berth>"),
    })
    .expect("renders")
}

/// Undoes quoted-printable soft line breaks and `=3D`, as a mail client would for the link.
fn decoded(raw: &str) -> String {
    raw.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
}

#[tokio::test]
async fn welcome_mail_arrives_over_smtp() {
    let sink = SmtpSink::start().await;
    let cfg = config(&[("BERTH_SMTP_URL", &sink.url), ("BERTH_MAIL_FROM", "Hosting <noreply@hosting.test>")]);
    let mailer = mail::from_config(&cfg).expect("mailer");
    assert_eq!(mailer.name(), "smtp");
    mailer.send(&welcome("welcome-1")).await.expect("sent");
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1);
    let raw = &got[0];
    assert!(raw.contains("To: owner@shop.example"), "{raw}");
    assert!(raw.contains("From: Hosting <noreply@hosting.test>"), "{raw}");
    assert!(raw.contains("Message-ID: <welcome-1@berth>"), "{raw}");
    assert!(decoded(raw).contains("http://panel.test/set-password?token=abc123"), "{raw}");
    assert!(raw.contains("multipart/alternative"), "{raw}");
}

#[tokio::test]
async fn unreachable_smtp_is_an_error() {
    let port = crate::support::services::free_port();
    let cfg = config(&[("BERTH_SMTP_URL", &format!("smtp://127.0.0.1:{port}"))]);
    let mailer = mail::from_config(&cfg).expect("mailer");
    let err = mailer.send(&welcome("welcome-2")).await.expect_err("nothing listens");
    assert!(err.to_string().starts_with("SMTP delivery failed"), "{err}");
}

#[tokio::test]
async fn without_smtp_mail_goes_to_the_outbox_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(&[("BERTH_DATA_DIR", &dir.path().display().to_string())]);
    let mailer = mail::from_config(&cfg).expect("mailer");
    assert_eq!(mailer.name(), "outbox");
    mailer.send(&welcome("welcome-3")).await.expect("written");
    mailer.send(&welcome("welcome-3")).await.expect("retried send");
    let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox")).expect("outbox").collect();
    assert_eq!(files.len(), 1, "a retried send overwrites its own file");
    let raw = std::fs::read_to_string(files[0].as_ref().expect("entry").path()).expect("read");
    assert!(raw.contains("Subject: Welcome to your hosting, Shop & Co"), "{raw}");
}

/// The outbox holds working set-password links: Berth's user alone may read it, also when an
/// older Berth (or a generous umask) left it readable.
#[cfg(unix)]
#[tokio::test]
async fn the_outbox_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(&[("BERTH_DATA_DIR", &dir.path().display().to_string())]);
    let mailer = mail::from_config(&cfg).expect("mailer");
    mailer.send(&welcome("private-1")).await.expect("written");
    let outbox = dir.path().join("outbox");
    assert_eq!(mode(&outbox), 0o700, "the outbox directory");
    let file = outbox.join("private-1berth.eml");
    assert_eq!(mode(&file), 0o600, "a message");
    // Left world-readable by an older version: tightened on the next send, the rewritten
    // message included.
    std::fs::set_permissions(&outbox, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod file");
    mailer.send(&welcome("private-1")).await.expect("rewritten");
    assert_eq!(mode(&outbox), 0o700);
    assert_eq!(mode(&file), 0o600);
    let names: Vec<String> = std::fs::read_dir(&outbox)
        .expect("outbox")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["private-1berth.eml"], "no temporary files left behind");
}
