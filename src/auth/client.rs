//! Who a client is for limits: its IP address (IPv6 by its /64, the block one subscriber
//! usually holds), taken from the TCP peer or, behind a trusted proxy such as the ALB, from the
//! last `X-Forwarded-For` entry (the one the proxy itself appended).

use std::net::{IpAddr, Ipv6Addr};

/// The address limits are kept for.
pub fn client_key(peer: Option<IpAddr>, forwarded_for: Option<&[u8]>, trust: bool) -> IpAddr {
    let forwarded = trust
        .then(|| forwarded_for.and_then(last_forwarded))
        .flatten();
    let address = forwarded
        .or(peer)
        .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    block_of(address)
}

fn last_forwarded(header: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(header).ok()?;
    text.rsplit(',').next()?.trim().parse().ok()
}

/// IPv4 addresses as they are; IPv6 addresses by their /64 (IPv4-mapped ones as IPv4).
fn block_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_peer_unless_the_proxy_is_trusted() {
        let peer = Some(ip("10.0.1.5"));
        let header = Some(&b"203.0.113.9, 198.51.100.7"[..]);
        assert_eq!(client_key(peer, header, false), ip("10.0.1.5"));
        assert_eq!(client_key(peer, header, true), ip("198.51.100.7"));
        assert_eq!(client_key(peer, Some(b"garbage"), true), ip("10.0.1.5"));
        assert_eq!(client_key(peer, None, true), ip("10.0.1.5"));
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_block() {
        let a = client_key(Some(ip("2001:db8:1:2::1")), None, false);
        let b = client_key(Some(ip("2001:db8:1:2:ffff::9")), None, false);
        assert_eq!(a, b);
        assert_ne!(a, client_key(Some(ip("2001:db8:1:3::1")), None, false));
        assert_eq!(
            client_key(Some(ip("::ffff:192.0.2.1")), None, false),
            ip("192.0.2.1")
        );
    }
}
