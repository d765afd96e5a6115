//! `aws:SourceIp`: the TCP peer, unless the peer is a proxy we trust
//! (`--trusted-proxies`); then the right-most address of
//! `X-Forwarded-For` that is not a trusted proxy.

use std::net::IpAddr;
use std::str::FromStr;

use http::HeaderMap;

/// An IPv4 or IPv6 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// A CIDR that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an address or CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)")]
pub struct BadCidr(pub String);

impl FromStr for Cidr {
    type Err = BadCidr;

    fn from_str(s: &str) -> Result<Cidr, BadCidr> {
        let bad = || BadCidr(s.to_owned());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Cidr {
    /// Whether `ip` is in the network; an IPv4-mapped IPv6 address counts
    /// as its IPv4 address.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses as IPv4.
#[must_use]
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// Parses `--trusted-proxies` (comma-separated CIDRs).
pub fn parse_list(list: &str) -> Result<Vec<Cidr>, BadCidr> {
    list.split(',').filter(|s| !s.trim().is_empty()).map(str::parse).collect()
}

/// The client's address as policies see it.
#[must_use]
pub fn source_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    // Every X-Forwarded-For header, in order, as one list.
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        // A hop that is not an address cannot be attributed: stop at the
        // last trusted one rather than believe what lies beyond it.
        let Ok(ip) = hop.parse::<IpAddr>().map(canonical) else { break };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed")]

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::5")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("192.0.2.1")));
        assert!("127.0.0.1".parse::<Cidr>().unwrap().contains(ip("127.0.0.1")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
        assert_eq!(parse_list("10.0.0.0/8, 127.0.0.1").unwrap().len(), 2);
    }

    #[test]
    fn forwarded_for_only_from_trusted_peers() {
        let trusted = parse_list("10.0.0.0/8").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "198.51.100.7, 203.0.113.9, 10.0.0.3".parse().unwrap());
        // From a trusted proxy: the right-most untrusted hop.
        assert_eq!(source_ip(ip("10.0.0.2"), &headers, &trusted), ip("203.0.113.9"));
        // From anyone else: the header is the client's to forge.
        assert_eq!(source_ip(ip("192.0.2.1"), &headers, &trusted), ip("192.0.2.1"));
        // No header: the peer.
        assert_eq!(source_ip(ip("10.0.0.2"), &HeaderMap::new(), &trusted), ip("10.0.0.2"));
        // Garbage stops the walk at the last trusted hop.
        headers.insert("x-forwarded-for", "198.51.100.7, junk, 10.0.0.3".parse().unwrap());
        assert_eq!(source_ip(ip("10.0.0.2"), &headers, &trusted), ip("10.0.0.3"));
    }
}
