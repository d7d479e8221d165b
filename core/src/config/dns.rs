//! DNS: the base domain signup subdomains live under, the provider Berth creates site records
//! with, and the address those records point at.

use std::net::IpAddr;

use url::Url;

use super::{declared_default, Config, Mask, Raw, Secret, Setting};

/// This area's settings, in the order `config check` prints them.
pub const SETTINGS: &[Setting] = &[BASE_DOMAIN, DNS_PROVIDER, PDNS_API_URL, PDNS_API_KEY, PDNS_SERVER_ID, DNS_TARGET];

const BASE_DOMAIN: Setting = Setting {
    key: "base_domain",
    default: "(none)",
    mask: Mask::Plain,
    about: "the domain signup subdomains live under (`shop.<base>`)",
    value: |c| c.dns.base_domain.clone(),
};
const DNS_PROVIDER: Setting = Setting {
    key: "dns_provider",
    default: "none",
    mask: Mask::Plain,
    about: "`none` (DNS managed elsewhere) or `powerdns`",
    value: |c| Some(c.dns.provider.as_str().to_owned()),
};
const PDNS_API_URL: Setting = Setting {
    key: "pdns_api_url",
    default: "(unused)",
    mask: Mask::Plain,
    about: "PowerDNS HTTP API, e.g. `http://127.0.0.1:8081` (required for `powerdns`)",
    value: |c| powerdns(c).map(|(api_url, _, _)| api_url.to_string()),
};
const PDNS_API_KEY: Setting = Setting {
    key: "pdns_api_key",
    default: "(unused)",
    mask: Mask::Secret,
    about: "PowerDNS API key (required for `powerdns`)",
    value: |c| powerdns(c).map(|(_, api_key, _)| api_key.expose().to_owned()),
};
const PDNS_SERVER_ID: Setting = Setting {
    key: "pdns_server_id",
    default: "localhost",
    mask: Mask::Plain,
    about: "PowerDNS server id in API paths",
    // Without PowerDNS the default is not in force either.
    value: |c| Some(powerdns(c).map_or_else(|| "(unused)".into(), |(_, _, server_id)| server_id.to_owned())),
};
const DNS_TARGET: Setting = Setting {
    key: "dns_target",
    default: "127.0.0.1",
    mask: Mask::Plain,
    about: "the address site records point at (the ingress)",
    value: |c| Some(c.dns.target.to_string()),
};

#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// The domain under which signup subdomains live; `None`: no subdomains.
    pub base_domain: Option<String>,
    pub provider: DnsProviderConfig,
    /// The address site records point at.
    pub target: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsProviderConfig {
    /// Berth creates no records: DNS is managed elsewhere.
    None,
    PowerDns {
        api_url: Url,
        api_key: Secret,
        server_id: String,
    },
}

impl DnsProviderConfig {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::PowerDns { .. } => "powerdns",
        }
    }
}

fn powerdns(config: &Config) -> Option<(&Url, &Secret, &str)> {
    match &config.dns.provider {
        DnsProviderConfig::PowerDns { api_url, api_key, server_id } => Some((api_url, api_key, server_id)),
        DnsProviderConfig::None => None,
    }
}

impl DnsConfig {
    pub(super) fn load(raw: &mut Raw) -> Self {
        let base_domain = raw.get(&BASE_DOMAIN).and_then(|d| match crate::validate::domain(&d) {
            Ok(d) => Some(d),
            Err(msg) => {
                raw.problem(&BASE_DOMAIN, format_args!("`{d}` {msg}"));
                None
            }
        });
        let provider = match raw.get(&DNS_PROVIDER).as_deref().unwrap_or(DNS_PROVIDER.default) {
            "none" => DnsProviderConfig::None,
            "powerdns" => {
                let api_url = match raw.get(&PDNS_API_URL).map(|u| Url::parse(&u)) {
                    Some(Ok(u)) if matches!(u.scheme(), "http" | "https") => Some(u),
                    Some(_) => {
                        raw.problem(&PDNS_API_URL, "must be an http(s) URL");
                        None
                    }
                    None => {
                        raw.problem(&PDNS_API_URL, "required with BERTH_DNS_PROVIDER=powerdns");
                        None
                    }
                };
                let api_key = raw.get(&PDNS_API_KEY);
                if api_key.is_none() {
                    raw.problem(&PDNS_API_KEY, "required with BERTH_DNS_PROVIDER=powerdns");
                }
                match (api_url, api_key) {
                    (Some(api_url), Some(key)) => DnsProviderConfig::PowerDns {
                        api_url,
                        api_key: Secret(key),
                        server_id: raw.get_or_default(&PDNS_SERVER_ID),
                    },
                    _ => DnsProviderConfig::None,
                }
            }
            v => {
                raw.problem(&DNS_PROVIDER, format_args!("`{v}` must be none or powerdns"));
                DnsProviderConfig::None
            }
        };
        let target = match raw.get(&DNS_TARGET) {
            None => declared_default(&DNS_TARGET),
            Some(v) => v.parse().unwrap_or_else(|_| {
                raw.problem(&DNS_TARGET, format_args!("`{v}` is not an IP address"));
                declared_default(&DNS_TARGET)
            }),
        };
        DnsConfig { base_domain, provider, target }
    }
}
