//! Customer network addresses. Docker's default address pools hold about thirty bridge
//! networks, and Berth makes one per customer, so Berth hands out subnets itself from a pool
//! sized for the business (default 10.213.0.0/16 in /26 pieces: 1,024 customers of up to 62
//! containers each), skipping every subnet any network on the host already uses.

use ipnet::{IpNet, Ipv4Net};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubnetPool {
    pub pool: Ipv4Net,
    /// The prefix length of each customer's subnet.
    pub prefix: u8,
}

impl SubnetPool {
    /// The first subnet of the pool that overlaps none of `used`.
    pub fn next_free(&self, used: &[IpNet]) -> Option<Ipv4Net> {
        let mut candidates = self.pool.subnets(self.prefix).ok()?;
        candidates.find(|c| {
            let c = IpNet::V4(*c);
            !used.iter().any(|u| u.contains(&c.network()) || c.contains(&u.network()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("net")
    }

    #[test]
    fn skips_everything_already_in_use() {
        let pool = SubnetPool { pool: "10.213.0.0/16".parse().expect("pool"), prefix: 26 };
        assert_eq!(pool.next_free(&[]).map(|n| n.to_string()).as_deref(), Some("10.213.0.0/26"));
        let used = [net("10.213.0.0/26"), net("10.213.0.64/26"), net("172.17.0.0/16")];
        assert_eq!(pool.next_free(&used).map(|n| n.to_string()).as_deref(), Some("10.213.0.128/26"));
        // A bigger foreign network covering the start of the pool is skipped as a whole.
        let used = [net("10.213.0.0/24")];
        assert_eq!(pool.next_free(&used).map(|n| n.to_string()).as_deref(), Some("10.213.1.0/26"));
        // A small network inside a candidate makes that candidate unusable.
        let used = [net("10.213.0.8/29")];
        assert_eq!(pool.next_free(&used).map(|n| n.to_string()).as_deref(), Some("10.213.0.64/26"));
    }

    #[test]
    fn a_full_pool_has_nothing_left() {
        let pool = SubnetPool { pool: "10.213.0.0/25".parse().expect("pool"), prefix: 26 };
        assert_eq!(pool.next_free(&[net("10.213.0.0/26"), net("10.213.0.64/26")]), None);
    }
}
