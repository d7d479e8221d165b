//! DNS records for sites: `<host>` → the ingress address. Every call is idempotent (records are
//! replaced, not added), so a retried onboarding step never leaves a duplicate.

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use berth_core::config::{Config, DnsProviderConfig, Secret};
use serde_json::json;
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("`{0}` is not inside the zone {1}")]
    OutsideZone(String, String),
    #[error("DNS provider unreachable: {0}")]
    Unreachable(String),
    #[error("DNS provider refused the change ({status}): {body}")]
    Refused { status: u16, body: String },
}

#[async_trait]
pub trait DnsProvider: Send + Sync {
    /// Makes `host` (a validated, lowercase ASCII name) resolve to `address`, replacing what
    /// was there.
    async fn upsert_address(&self, host: &str, address: IpAddr) -> Result<(), DnsError>;
    /// Removes `host`'s address records; removing an absent record succeeds.
    async fn remove_address(&self, host: &str) -> Result<(), DnsError>;
    /// The addresses `host` has at the provider (for checks and tests).
    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError>;
    /// A short name for logs and the flow timeline.
    fn name(&self) -> &'static str;
}

/// DNS is managed outside Berth: nothing to do.
pub struct NoDns;

#[async_trait]
impl DnsProvider for NoDns {
    async fn upsert_address(&self, _host: &str, _address: IpAddr) -> Result<(), DnsError> {
        Ok(())
    }
    async fn remove_address(&self, _host: &str) -> Result<(), DnsError> {
        Ok(())
    }
    async fn addresses(&self, _host: &str) -> Result<Vec<IpAddr>, DnsError> {
        Ok(Vec::new())
    }
    fn name(&self) -> &'static str {
        "none"
    }
}

/// The configured provider; `zone` is the base domain whose records Berth manages.
pub fn from_config(config: &Config) -> Box<dyn DnsProvider> {
    match (&config.dns.provider, &config.dns.base_domain) {
        (DnsProviderConfig::PowerDns { api_url, api_key, server_id }, Some(zone)) => {
            Box::new(PowerDns::new(api_url.clone(), api_key.clone(), server_id, zone))
        }
        _ => Box::new(NoDns),
    }
}

/// PowerDNS Authoritative through its HTTP API (`/api/v1/servers/<id>/zones/<zone>`).
pub struct PowerDns {
    http: reqwest::Client,
    api: Url,
    key: Secret,
    server_id: String,
    /// The zone in canonical form, with the trailing dot: `hosting.example.`
    zone: String,
}

const TTL_SECS: u32 = 300;

impl PowerDns {
    pub fn new(api: Url, key: Secret, server_id: &str, zone: &str) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        Self { http, api, key, server_id: server_id.to_owned(), zone: format!("{}.", zone.trim_end_matches('.')) }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1/servers/{}{path}", self.api.as_str().trim_end_matches('/'), self.server_id)
    }

    fn fqdn(&self, host: &str) -> Result<String, DnsError> {
        let name = format!("{}.", host.trim_end_matches('.'));
        let zone_suffix = format!(".{}", self.zone);
        if name == self.zone || name.ends_with(&zone_suffix) {
            Ok(name)
        } else {
            Err(DnsError::OutsideZone(host.to_owned(), self.zone.clone()))
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, DnsError> {
        req.header("X-API-Key", self.key.expose()).send().await.map_err(|e| DnsError::Unreachable(e.to_string()))
    }

    async fn check(res: reqwest::Response) -> Result<reqwest::Response, DnsError> {
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status().as_u16();
        let body = res.text().await.unwrap_or_default().chars().take(300).collect();
        Err(DnsError::Refused { status, body })
    }

    /// Creates the zone when it does not exist yet (first site of a fresh installation).
    pub async fn ensure_zone(&self) -> Result<(), DnsError> {
        let res = self.send(self.http.get(self.url(&format!("/zones/{}", self.zone)))).await?;
        // PowerDNS answers 404 or 422 for an unknown zone, depending on the version.
        if res.status().is_success() {
            return Ok(());
        }
        let body = json!({"name": self.zone, "kind": "Native", "nameservers": []});
        let res = self.send(self.http.post(self.url("/zones")).json(&body)).await?;
        // 409: created meanwhile by a concurrent step; that is the state we wanted.
        if res.status().as_u16() == 409 {
            return Ok(());
        }
        Self::check(res).await.map(|_| ())
    }

    async fn patch(&self, rrsets: serde_json::Value) -> Result<(), DnsError> {
        self.ensure_zone().await?;
        let res = self
            .send(self.http.patch(self.url(&format!("/zones/{}", self.zone))).json(&json!({"rrsets": rrsets})))
            .await?;
        Self::check(res).await.map(|_| ())
    }
}

fn record_type(address: IpAddr) -> &'static str {
    match address {
        IpAddr::V4(_) => "A",
        IpAddr::V6(_) => "AAAA",
    }
}

#[async_trait]
impl DnsProvider for PowerDns {
    async fn upsert_address(&self, host: &str, address: IpAddr) -> Result<(), DnsError> {
        let name = self.fqdn(host)?;
        let rrsets = json!([{
            "name": name,
            "type": record_type(address),
            "ttl": TTL_SECS,
            "changetype": "REPLACE",
            "records": [{"content": address.to_string(), "disabled": false}],
        }]);
        self.patch(rrsets).await
    }

    async fn remove_address(&self, host: &str) -> Result<(), DnsError> {
        let name = self.fqdn(host)?;
        let rrsets = json!([
            {"name": name, "type": "A", "changetype": "DELETE"},
            {"name": name, "type": "AAAA", "changetype": "DELETE"},
        ]);
        self.patch(rrsets).await
    }

    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let name = self.fqdn(host)?;
        let res = self.send(self.http.get(self.url(&format!("/zones/{}", self.zone)))).await?;
        if res.status().as_u16() == 404 || res.status().as_u16() == 422 {
            return Ok(Vec::new());
        }
        let zone: serde_json::Value =
            Self::check(res).await?.json().await.map_err(|e| DnsError::Unreachable(e.to_string()))?;
        let mut out = Vec::new();
        for rrset in zone["rrsets"].as_array().into_iter().flatten() {
            if rrset["name"] == name.as_str() && matches!(rrset["type"].as_str(), Some("A" | "AAAA")) {
                for record in rrset["records"].as_array().into_iter().flatten() {
                    if let Some(ip) = record["content"].as_str().and_then(|c| c.parse().ok()) {
                        out.push(ip);
                    }
                }
            }
        }
        Ok(out)
    }

    fn name(&self) -> &'static str {
        "powerdns"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_outside_the_zone_are_refused() {
        let p = PowerDns::new(
            Url::parse("http://127.0.0.1:1").expect("url"),
            Secret::new("k"),
            "localhost",
            "hosting.example",
        );
        assert_eq!(p.fqdn("shop.hosting.example").expect("inside"), "shop.hosting.example.");
        assert_eq!(p.fqdn("hosting.example").expect("apex"), "hosting.example.");
        assert!(p.fqdn("evilhosting.example").is_err());
        assert!(p.fqdn("hosting.example.evil.com").is_err());
    }
}
