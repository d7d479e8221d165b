//! The nginx configuration as askama templates (runtime/templates/*.conf), and the escaper
//! every value in them goes through.

use std::collections::BTreeMap;
use std::fmt::{self, Write};
use std::net::SocketAddr;

use askama::Template;
use berth_core::store::site_state::Route;

use crate::error::{Result, RuntimeError};

/// Escaper for nginx configuration. nginx has no way to quote `$` (variables) and treats `;`,
/// `{`, `}`, quotes and whitespace as syntax, so there is nothing safe to turn them into: any
/// character outside the set a host name, an IP address with port or a plain path needs fails
/// the render instead. Values are validated long before; this is the last line.
#[derive(Debug, Clone, Copy)]
pub struct Nginx;

pub fn nginx_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '/' | '[' | ']')
}

impl askama::filters::Escaper for Nginx {
    fn write_escaped_str<W: Write>(&self, mut dest: W, string: &str) -> fmt::Result {
        if string.is_empty() || !string.chars().all(nginx_safe) {
            return Err(fmt::Error);
        }
        dest.write_str(string)
    }
}

pub struct RouteView {
    /// The site id without hyphens: names the upstream.
    pub key: String,
    pub domains: Vec<String>,
    pub address: String,
    /// The site's hosts that have a complete stored certificate, in domain order.
    pub certificates: Vec<CertView>,
}

pub struct CertView {
    pub host: String,
    pub chain: String,
    pub key: String,
    pub stamp: u128,
}

/// A complete certificate of one host, as stored on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub chain: String,
    pub key: String,
    /// The newest modification time of its files, in nanoseconds since the epoch: rendered, so
    /// a renewed certificate changes the configuration text and is reloaded.
    pub stamp: u128,
}

/// Where and how the sites are served, apart from the routes themselves.
#[derive(Debug, Clone)]
pub struct Layout {
    pub listen: SocketAddr,
    /// HTTPS address; `None` renders no TLS server at all.
    pub tls_listen: Option<SocketAddr>,
    /// Whether Berth owns the listening sockets (managed mode) and so renders the default
    /// servers for unknown host names.
    pub default_server: bool,
    /// Absolute directory of ACME HTTP-01 tokens, without a trailing slash.
    pub challenge_dir: String,
}

#[derive(Template)]
#[template(path = "sites.conf")]
pub struct SitesConf<'a> {
    pub listen: String,
    pub tls_listen: Option<String>,
    pub default_server: bool,
    pub challenge_dir: &'a str,
    pub routes: &'a [RouteView],
}

#[derive(Template)]
#[template(path = "nginx.conf")]
pub struct MainConf<'a> {
    pub prefix: &'a str,
    pub sites: &'a str,
}

#[derive(Template)]
#[template(path = "check.conf")]
pub struct CheckConf<'a> {
    pub prefix: &'a str,
    pub sites: &'a str,
}

fn failed(what: &str, e: askama::Error) -> RuntimeError {
    RuntimeError::Ingress(format!("cannot render {what}: a value is not allowed in nginx configuration ({e})"))
}

/// The server blocks of every routed site; `certs` holds the complete certificates by host.
/// Same input, same bytes out.
pub fn sites(routes: &[Route], layout: &Layout, certs: &BTreeMap<String, CertFiles>) -> Result<String> {
    let views: Vec<RouteView> = routes
        .iter()
        .map(|r| RouteView {
            key: r.site_id.simple().to_string(),
            domains: r.domains.clone(),
            address: r.address.clone(),
            certificates: r
                .domains
                .iter()
                .filter_map(|host| {
                    certs.get(host).map(|c| CertView {
                        host: host.clone(),
                        chain: c.chain.clone(),
                        key: c.key.clone(),
                        stamp: c.stamp,
                    })
                })
                .collect(),
        })
        .collect();
    SitesConf {
        listen: layout.listen.to_string(),
        tls_listen: layout.tls_listen.map(|a| a.to_string()),
        default_server: layout.default_server,
        challenge_dir: &layout.challenge_dir,
        routes: &views,
    }
    .render()
    .map_err(|e| failed("the sites configuration", e))
}

pub fn main_conf(prefix: &str, sites: &str) -> Result<String> {
    MainConf { prefix, sites }.render().map_err(|e| failed("the nginx configuration", e))
}

pub fn check_conf(prefix: &str, sites: &str) -> Result<String> {
    CheckConf { prefix, sites }.render().map_err(|e| failed("the check configuration", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn route(domain: &str, address: &str) -> Route {
        Route { site_id: Uuid::now_v7(), domains: vec![domain.into()], address: address.into() }
    }

    fn layout(tls: Option<&str>, default_server: bool) -> Layout {
        Layout {
            listen: "127.0.0.1:8081".parse().expect("addr"),
            tls_listen: tls.map(|a| a.parse().expect("addr")),
            default_server,
            challenge_dir: "/srv/berth/acme-challenges".into(),
        }
    }

    fn cert(host: &str, stamp: u128) -> (String, CertFiles) {
        let dir = format!("/srv/berth/tls/{host}");
        (host.into(), CertFiles { chain: format!("{dir}/fullchain.pem"), key: format!("{dir}/privkey.pem"), stamp })
    }

    /// The server block (from `server {` to its closing line) whose text contains `needle`.
    fn block<'t>(text: &'t str, needle: &str) -> &'t str {
        text.split("\nserver {")
            .find(|b| b.contains(needle))
            .unwrap_or_else(|| panic!("no block with {needle}: {text}"))
    }

    #[test]
    fn renders_a_server_per_site() {
        let text = sites(&[route("shop.example.com", "172.18.0.2:8080")], &layout(None, true), &BTreeMap::new())
            .expect("renders");
        assert!(text.contains("server_name shop.example.com;"), "{text}");
        assert!(text.contains("server 172.18.0.2:8080;"), "{text}");
        assert!(text.contains("default_server"), "{text}");
        assert!(text.contains("X-Frame-Options SAMEORIGIN"), "{text}");
        assert!(!text.contains("Strict-Transport-Security"), "no HSTS without TLS: {text}");
        assert!(!text.contains("ssl"), "no TLS without a TLS address: {text}");
    }

    #[test]
    fn without_a_tls_address_certificates_change_nothing() {
        let routes = [route("shop.example.com", "172.18.0.2:8080")];
        let certs = BTreeMap::from([cert("shop.example.com", 1)]);
        let plain = sites(&routes, &layout(None, true), &BTreeMap::new()).expect("renders");
        assert_eq!(sites(&routes, &layout(None, true), &certs).expect("renders"), plain);
    }

    #[test]
    fn acme_challenges_are_served_from_the_directory_on_every_http_server() {
        let text = sites(&[route("shop.example.com", "172.18.0.2:8080")], &layout(None, true), &BTreeMap::new())
            .expect("renders");
        let location =
            "location ^~ /.well-known/acme-challenge/ {\n        alias /srv/berth/acme-challenges/;\n        \
                        default_type text/plain;\n    }";
        assert!(block(&text, "server_name shop.example.com;").contains(location), "{text}");
        assert!(block(&text, "server_name _;").contains(location), "{text}");
        assert!(!text.contains("autoindex"), "no listing of the directory: {text}");
    }

    #[test]
    fn hosts_with_a_certificate_get_an_https_server_with_hsts() {
        let mut site = route("shop.example.com", "172.18.0.2:8080");
        site.domains.push("www.shop.example.com".into());
        let certs = BTreeMap::from([cert("shop.example.com", 1_700_000_000_123_456_789), cert("other.example", 5)]);
        let text = sites(&[site], &layout(Some("0.0.0.0:8443"), true), &certs).expect("renders");

        let tls = block(&text, "listen 0.0.0.0:8443 ssl;");
        assert!(tls.contains("server_name shop.example.com;"), "only the certified host: {tls}");
        assert!(tls.contains("ssl_certificate /srv/berth/tls/shop.example.com/fullchain.pem;"), "{tls}");
        assert!(tls.contains("ssl_certificate_key /srv/berth/tls/shop.example.com/privkey.pem;"), "{tls}");
        assert!(tls.contains("ssl_protocols TLSv1.2 TLSv1.3;"), "{tls}");
        assert!(tls.contains("add_header Strict-Transport-Security max-age=31536000 always;"), "{tls}");
        assert!(tls.contains("X-Frame-Options SAMEORIGIN"), "{tls}");
        assert!(tls.contains("proxy_pass http://site_"), "{tls}");
        assert!(!tls.contains("acme-challenge"), "challenges are fetched over HTTP: {tls}");
        assert_eq!(text.matches(" ssl;").count(), 1, "no TLS server for www (no certificate): {text}");
        assert!(!text.contains("other.example"), "certificates of unrouted hosts are not used: {text}");
        assert!(text.contains("1700000000123456789"), "the certificate's age is part of the text: {text}");

        let http = block(&text, "listen 127.0.0.1:8081;");
        assert!(!http.contains("Strict-Transport-Security"), "HSTS only over TLS: {http}");
        let default = block(&text, "listen 0.0.0.0:8443 ssl default_server;");
        assert!(default.contains("ssl_reject_handshake on;"), "{default}");
    }

    #[test]
    fn a_renewed_certificate_changes_the_text() {
        let routes = [route("shop.example.com", "172.18.0.2:8080")];
        let tls = layout(Some("0.0.0.0:8443"), true);
        let before = sites(&routes, &tls, &BTreeMap::from([cert("shop.example.com", 1)])).expect("renders");
        let after = sites(&routes, &tls, &BTreeMap::from([cert("shop.example.com", 2)])).expect("renders");
        assert_ne!(before, after);
    }

    #[test]
    fn external_mode_renders_no_default_servers() {
        let text = sites(&[route("shop.example.com", "172.18.0.2:8080")], &layout(Some("0.0.0.0:8443"), false), &{
            BTreeMap::from([cert("shop.example.com", 1)])
        })
        .expect("renders");
        assert!(!text.contains("default_server"), "{text}");
        assert!(text.contains("listen 0.0.0.0:8443 ssl;"), "{text}");
    }

    #[test]
    fn metacharacters_fail_the_render() {
        for bad in ["a.com; include /etc/passwd", "a.com\nserver {", "$host", "a{b}", "\"q\"", "a`b`", ""] {
            let res = sites(&[route(bad, "172.18.0.2:8080")], &layout(None, false), &BTreeMap::new());
            assert!(res.is_err(), "{bad:?} rendered");
        }
        for bad in ["/srv/my berth", "/srv/b;erth", "/srv/$berth", ""] {
            let mut l = layout(None, true);
            l.challenge_dir = bad.into();
            assert!(sites(&[], &l, &BTreeMap::new()).is_err(), "challenge dir {bad:?} rendered");
            if bad.is_empty() {
                continue;
            }
            let mut c = cert("shop.example.com", 1);
            c.1.key = format!("{bad}/privkey.pem");
            let res = sites(
                &[route("shop.example.com", "172.18.0.2:8080")],
                &layout(Some("0.0.0.0:8443"), false),
                &BTreeMap::from([c]),
            );
            assert!(res.is_err(), "key path {bad:?} rendered");
        }
    }
}
