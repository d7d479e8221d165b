//! The onboarding steps, each idempotent. They take the run's [`Subject`] and the [`Edges`].

use anyhow::{anyhow, Context};
use berth_core::access::Caller;
use berth_core::store::{self, audit};
use berth_integrations::mail::{self, Welcome};
use berth_integrations::tls::{self, Issuer};
use serde_json::json;

use super::{Edges, Subject};

/// Whether `host` lies under the base domain whose DNS Berth manages.
fn managed_by_us(edges: &Edges, host: &str) -> bool {
    edges.config.base_domain.as_deref().is_some_and(|base| host == base || host.ends_with(&format!(".{base}")))
}

/// Points the site's host at the ingress (records are replaced, so a retry never doubles one).
pub async fn dns(edges: &Edges, subject: &Subject) -> anyhow::Result<String> {
    if !managed_by_us(edges, &subject.host) {
        return Ok(format!(
            "skipped: {} is the customer's own domain; they point it at {}",
            subject.host, edges.config.dns_target
        ));
    }
    edges.dns.upsert_address(&subject.host, edges.config.dns_target).await.context("DNS record")?;
    Ok(format!("{} → {} ({})", subject.host, edges.config.dns_target, edges.dns.name()))
}

/// Gets the site a certificate: from the ACME CA when configured, self-signed otherwise. A
/// certificate already stored from the same kind of issuer is kept.
pub async fn certificate(edges: &Edges, subject: &Subject) -> anyhow::Result<String> {
    let wanted = if edges.acme.is_some() { Issuer::Acme } else { Issuer::SelfSigned };
    if edges.certs.issuer(&subject.host).await == Some(wanted) {
        return Ok(format!("already issued ({wanted:?})"));
    }
    let hosts = vec![subject.host.clone()];
    let cert = match &edges.acme {
        Some(acme) => acme.issue(&hosts, edges.challenges.as_ref()).await.context("ACME order")?,
        None => tls::self_signed(&hosts).context("self-signed certificate")?,
    };
    edges.certs.save(&subject.host, &cert).await?;
    Ok(format!("issued ({wanted:?})"))
}

/// Sends the welcome e-mail with a fresh one-time set-password link. `message_id` is stable for
/// the run, so a retried send is recognisably the same message.
pub async fn welcome(edges: &Edges, subject: &Subject, message_id: &str) -> anyhow::Result<String> {
    let user = store::users::find(&edges.db, subject.user_id).await?.ok_or_else(|| anyhow!("portal user is gone"))?;
    let customer = store::customers::get(&edges.db, &Caller::system("onboarding"), subject.customer_id).await?;
    let token = store::users::issue_password_token(&edges.db, user.id).await?;
    let cfg = &edges.config;
    let site_url = format!("http://{}", subject.host);
    let set_password_url = cfg.public_link(&format!("/set-password?token={token}"));
    let portal_url = cfg.public_link("/portal");
    let message = mail::welcome(Welcome {
        to: &user.email,
        company_name: &customer.company_name,
        site_url: &site_url,
        set_password_url: &set_password_url,
        portal_url: &portal_url,
        message_id: message_id.to_owned(),
    })?;
    edges.mailer.send(&message).await?;
    Ok(format!("sent to {} ({})", user.email, edges.mailer.name()))
}

/// Records that onboarding finished.
pub async fn finish(edges: &Edges, subject: &Subject) -> anyhow::Result<String> {
    let caller = Caller::system("onboarding");
    audit::record(
        &edges.db,
        &caller,
        audit::Event::new("customer.onboarded", "customer", subject.customer_id)
            .customer(Some(subject.customer_id))
            .details(json!({"site_id": subject.site_id, "host": subject.host})),
    )
    .await?;
    Ok("customer onboarded".into())
}
