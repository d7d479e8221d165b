//! The client's address, shared by the API and the UI. X-Forwarded-For is believed only when
//! the direct peer is one of the configured trusted proxies, and then only up to the first hop
//! that is not itself trusted: a client cannot dodge per-IP limits by sending its own header.

use std::net::IpAddr;

use ipnet::IpNet;

/// `forwarded_for` are the raw values of every X-Forwarded-For header, in order.
pub fn client_ip<'a>(peer: IpAddr, forwarded_for: impl IntoIterator<Item = &'a str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> =
        forwarded_for.into_iter().flat_map(|v| v.split(',')).filter_map(|s| s.trim().parse().ok()).collect();
    // Walk from the nearest hop outwards; the first untrusted address is the client.
    hops.iter().rev().find(|ip| !is_trusted(ip)).or(hops.first()).copied().unwrap_or(peer)
}

/// Whether a notification webhook must not be sent to `ip`: loopback, unspecified, private,
/// shared (CGNAT), link-local, multicast or broadcast addresses, and the customer networks'
/// pool (`site_subnets`). IPv4-mapped IPv6 addresses are judged as their IPv4 address.
pub fn is_internal(ip: IpAddr, site_subnets: &[IpNet]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    if site_subnets.iter().any(|net| net.contains(&ip)) {
        return true;
    }
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// A webhook target checked for sending: the URL and the addresses its host resolved to (the
/// request must connect to these, so a second DNS answer cannot swap in an internal address).
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    pub url: url::Url,
    pub host: String,
    pub addrs: Vec<std::net::SocketAddr>,
}

/// Parses `raw` as an `http`/`https` URL without credentials, resolves its host, and refuses
/// it when any address is internal ([`is_internal`]) unless `allow_private`.
pub async fn check_webhook_url(
    raw: &str,
    allow_private: bool,
    site_subnets: &[IpNet],
) -> Result<WebhookTarget, String> {
    let url = url::Url::parse(raw).map_err(|_| "must be an absolute http or https URL".to_owned())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    let host = url.host_str().ok_or_else(|| "must name a host".to_owned())?.to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<std::net::SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![std::net::SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(std::time::Duration::from_secs(5), tokio::net::lookup_host((bare, port)))
            .await
            .map_err(|_| "its host did not resolve in time".to_owned())?
            .map_err(|_| "its host does not resolve".to_owned())?
            .collect(),
    };
    if addrs.is_empty() {
        return Err("its host does not resolve".into());
    }
    if !allow_private && addrs.iter().any(|a| is_internal(a.ip(), site_subnets)) {
        return Err("its host resolves to a loopback, private, link-local or site network address".into());
    }
    Ok(WebhookTarget { url, host: bare.to_owned(), addrs })
}

#[cfg(test)]
mod internal_tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        let sites: Vec<IpNet> = vec!["172.30.0.0/16".parse().expect("net")];
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "172.30.4.5",
        ] {
            assert!(is_internal(ip.parse().expect("ip"), &sites), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(!is_internal(ip.parse().expect("ip"), &sites), "{ip}");
        }
    }

    #[tokio::test]
    async fn webhook_urls_to_loopback_are_refused_unless_allowed() {
        assert!(check_webhook_url("http://127.0.0.1:9/x", false, &[]).await.is_err());
        assert!(check_webhook_url("http://localhost/x", false, &[]).await.is_err());
        assert!(check_webhook_url("http://[::1]/x", false, &[]).await.is_err());
        assert!(check_webhook_url("ftp://example.com/", false, &[]).await.is_err());
        assert!(check_webhook_url("http://u:p@8.8.8.8/", false, &[]).await.is_err());
        assert!(check_webhook_url("http://127.0.0.1:9/x", true, &[]).await.is_ok());
        assert!(check_webhook_url("https://8.8.8.8/hook", false, &[]).await.is_ok());
    }
}
