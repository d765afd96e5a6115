//! [`Source`]: whom a client counts as, for the per-source limits (the
//! connection cap, the recording of refusals).
//!
//! An IPv4 address, or an IPv6 /64: one host usually holds a whole /64 and
//! could otherwise spread its connections or refusals over as many
//! addresses. An IPv4 address mapped into IPv6 counts as itself.

use std::net::{IpAddr, Ipv6Addr};

/// A client's source, as the per-source limits count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    #[must_use]
    pub fn of(ip: IpAddr) -> Source {
        match ip.to_canonical() {
            IpAddr::V6(v6) => Source(IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX)))),
            v4 @ IpAddr::V4(_) => Source(v4),
        }
    }
}

/// `192.0.2.1`, or `2001:db8::/64`.
impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => v4.fmt(f),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> String {
        Source::of(text.parse().unwrap()).to_string()
    }

    #[test]
    fn ipv4_as_itself_ipv6_by_its_slash_64() {
        assert_eq!(source("192.0.2.1"), "192.0.2.1");
        assert_eq!(source("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(source("2001:db8:1:2:ffff::9"), "2001:db8:1:2::/64");
        assert_eq!(Source::of("2001:db8::1".parse().unwrap()), Source::of("2001:db8::2".parse().unwrap()));
    }
}
