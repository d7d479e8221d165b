//! The nginx configuration as askama templates (runtime/templates/*.conf), and the escaper
//! every value in them goes through.

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
}

#[derive(Template)]
#[template(path = "sites.conf")]
pub struct SitesConf<'a> {
    pub listen: String,
    pub default_server: bool,
    pub tls: bool,
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

/// The server blocks of every routed site. Same routes in, same bytes out.
pub fn sites(routes: &[Route], listen: SocketAddr, default_server: bool) -> Result<String> {
    let views: Vec<RouteView> = routes
        .iter()
        .map(|r| RouteView {
            key: r.site_id.simple().to_string(),
            domains: r.domains.clone(),
            address: r.address.clone(),
        })
        .collect();
    SitesConf { listen: listen.to_string(), default_server, tls: false, routes: &views }
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

    #[test]
    fn renders_a_server_per_site() {
        let text = sites(&[route("shop.example.com", "172.18.0.2:8080")], "127.0.0.1:8081".parse().unwrap(), true)
            .expect("renders");
        assert!(text.contains("server_name shop.example.com;"), "{text}");
        assert!(text.contains("server 172.18.0.2:8080;"), "{text}");
        assert!(text.contains("default_server"), "{text}");
        assert!(text.contains("X-Frame-Options SAMEORIGIN"), "{text}");
        assert!(!text.contains("Strict-Transport-Security"), "no HSTS without TLS: {text}");
    }

    #[test]
    fn metacharacters_fail_the_render() {
        for bad in ["a.com; include /etc/passwd", "a.com\nserver {", "$host", "a{b}", "\"q\"", "a`b`", ""] {
            let res = sites(&[route(bad, "172.18.0.2:8080")], "127.0.0.1:8081".parse().unwrap(), false);
            assert!(res.is_err(), "{bad:?} rendered");
        }
    }
}
