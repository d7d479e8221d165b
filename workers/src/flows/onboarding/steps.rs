//! The onboarding steps, each idempotent. They take the worker [`Env`] and the run's [`Subject`].

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use berth_core::access::Caller;
use berth_core::config::IngressMode;
use berth_core::store::{self, audit};
use berth_core::types::SiteStatus;
use berth_integrations::mail::{self, Welcome};
use berth_integrations::tls::{self, Issuer};
use sea_orm::ActiveEnum;
use serde_json::json;

use berth_core::flows::onboarding::Subject;

use crate::env::Env;

/// Whether `host` lies under the base domain whose DNS Berth manages.
fn managed_by_us(env: &Env, host: &str) -> bool {
    env.config.dns.base_domain.as_deref().is_some_and(|base| host == base || host.ends_with(&format!(".{base}")))
}

/// How long a step waits for the site before failing (the flow then retries with backoff).
const SITE_WAIT: Duration = Duration::from_secs(90);

/// Waits until the reconciler reports the site's container running (it creates it from the
/// site row the signup wrote). Without a container runtime there is nothing to wait for.
pub async fn site(env: &Env, subject: &Subject) -> anyhow::Result<String> {
    if env.config.runtime.docker_host.is_none() {
        return Ok("skipped: no container runtime is configured".into());
    }
    let caller = Caller::system("onboarding");
    let deadline = Instant::now() + SITE_WAIT;
    loop {
        let site = store::sites::get(&env.db, &env.keys, &caller, subject.site_id).await?;
        match site.model.status {
            SiteStatus::Running => {
                return Ok(format!("container {} running", site.model.container_id.unwrap_or_default()));
            }
            // A failed site does not heal by waiting; the reason goes to the flow's timeline.
            SiteStatus::Failed => {
                let reason = site.model.status_reason.unwrap_or_else(|| "no reason recorded".into());
                anyhow::bail!("the site failed: {reason}");
            }
            status if Instant::now() > deadline => {
                anyhow::bail!("the site is still {} after {} s", status.to_value(), SITE_WAIT.as_secs())
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Checks that the site answers 200 through the ingress by its host name, as a visitor would.
pub async fn health(env: &Env, subject: &Subject) -> anyhow::Result<String> {
    let cfg = &env.config;
    if cfg.runtime.docker_host.is_none() || cfg.runtime.ingress_mode == IngressMode::Off {
        return Ok("skipped: no container runtime or ingress is configured".into());
    }
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let url = format!("http://{}/", cfg.runtime.ingress_listen);
    let deadline = Instant::now() + SITE_WAIT;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        match http.get(&url).header(reqwest::header::HOST, &subject.host).send().await {
            Ok(res) if res.status() == reqwest::StatusCode::OK => {
                return Ok(format!("{} answers 200 through the ingress", subject.host));
            }
            Ok(res) => last = format!("status {}", res.status()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("{} does not answer 200 through the ingress ({last})", subject.host)
}

/// Points the site's host at the ingress (records are replaced, so a retry never doubles one).
pub async fn dns(env: &Env, subject: &Subject) -> anyhow::Result<String> {
    if !managed_by_us(env, &subject.host) {
        return Ok(format!(
            "skipped: {} is the customer's own domain; they point it at {}",
            subject.host, env.config.dns.target
        ));
    }
    env.dns.upsert_address(&subject.host, env.config.dns.target).await.context("DNS record")?;
    Ok(format!("{} → {} ({})", subject.host, env.config.dns.target, env.dns.name()))
}

/// Gets the site a certificate: from the ACME CA when configured, self-signed otherwise. A
/// certificate already stored from the same kind of issuer is kept.
pub async fn certificate(env: &Env, subject: &Subject) -> anyhow::Result<String> {
    let wanted = if env.acme.is_some() { Issuer::Acme } else { Issuer::SelfSigned };
    if env.certs.issuer(&subject.host).await == Some(wanted) {
        return Ok(format!("already issued ({wanted:?})"));
    }
    let hosts = vec![subject.host.clone()];
    let cert = match &env.acme {
        Some(acme) => acme.issue(&hosts, env.challenges.as_ref()).await.context("ACME order")?,
        None => tls::self_signed(&hosts).context("self-signed certificate")?,
    };
    env.certs.save(&subject.host, &cert).await?;
    env.reconcile_soon();
    Ok(format!("issued ({wanted:?})"))
}

/// Sends the welcome e-mail with a fresh one-time set-password link. `message_id` is stable for
/// the run, so a retried send is recognisably the same message.
pub async fn welcome(env: &Env, subject: &Subject, message_id: &str) -> anyhow::Result<String> {
    let user = store::users::find(&env.db, subject.user_id).await?.ok_or_else(|| anyhow!("portal user is gone"))?;
    let customer = store::customers::get(&env.db, &Caller::system("onboarding"), subject.customer_id).await?;
    let token = store::users::issue_password_token(&env.db, user.id).await?;
    let cfg = &env.config;
    let site_url = format!("http://{}", subject.host);
    let set_password_url = cfg.server.public_link(&format!("/set-password?token={token}"));
    let portal_url = cfg.server.public_link("/portal");
    let message = mail::welcome(Welcome {
        to: &user.email,
        company_name: &customer.company_name,
        site_url: &site_url,
        set_password_url: &set_password_url,
        portal_url: &portal_url,
        message_id: message_id.to_owned(),
    })?;
    env.mailer.send(&message).await?;
    Ok(format!("sent to {} ({})", user.email, env.mailer.name()))
}

/// Records that onboarding finished.
pub async fn finish(env: &Env, subject: &Subject) -> anyhow::Result<String> {
    let caller = Caller::system("onboarding");
    audit::record(
        &env.db,
        &caller,
        audit::Event::new("customer.onboarded", "customer", subject.customer_id)
            .customer(Some(subject.customer_id))
            .details(json!({"site_id": subject.site_id, "host": subject.host})),
    )
    .await?;
    Ok("customer onboarded".into())
}
