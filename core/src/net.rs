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
