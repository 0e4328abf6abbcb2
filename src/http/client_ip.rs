//! The client's address: the TCP peer, or what a trusted reverse proxy says in
//! `X-Forwarded-For`. The header is ignored from any other peer, so it cannot be spoofed.

use std::net::{IpAddr, Ipv4Addr};

use actix_web::dev::Payload;
use actix_web::http::header::HeaderValue;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use ipnet::IpNet;

use super::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Walks `X-Forwarded-For` from the right (nearest hop first), skipping trusted proxies;
/// the first untrusted hop is the client. Stops at the first entry that does not parse.
/// Whether the connection comes from a configured proxy, whose forwarding headers
/// (`X-Forwarded-For`, `X-Request-Id`) are believed.
pub fn from_trusted_proxy(peer: Option<IpAddr>, trusted: &[IpNet]) -> bool {
    peer.is_some_and(|ip| {
        let ip = ip.to_canonical();
        trusted.iter().any(|net| net.contains(&ip))
    })
}

pub fn resolve<'a>(
    peer: Option<IpAddr>,
    forwarded_for: impl Iterator<Item = &'a HeaderValue>,
    trusted: &[IpNet],
) -> ClientIp {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ip| ip.to_canonical());
    if !is_trusted(&client) {
        return ClientIp(client);
    }
    let hops: Vec<&str> = forwarded_for
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => client = ip.to_canonical(),
            Err(_) => break,
        }
        if !is_trusted(&client) {
            break;
        }
    }
    ClientIp(client)
}

impl ClientIp {
    /// The address the request-context middleware resolved for this request.
    pub fn of(req: &impl HttpMessage) -> Result<Self, ApiError> {
        let ip = req.extensions().get::<ClientIp>().copied();
        ip.ok_or_else(|| ApiError::internal("client ip missing: request context not applied"))
    }
}

impl FromRequest for ClientIp {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Self::of(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn resolve_with(peer: &str, xff: &[&str], trusted: &[&str]) -> IpAddr {
        let values: Vec<HeaderValue> = xff
            .iter()
            .map(|v| HeaderValue::from_str(v).unwrap())
            .collect();
        let trusted: Vec<IpNet> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        resolve(Some(ip(peer)), values.iter(), &trusted).0
    }

    #[test]
    fn untrusted_peer_cannot_set_its_address() {
        assert_eq!(
            resolve_with("203.0.113.9", &["198.51.100.1"], &[]),
            ip("203.0.113.9")
        );
        assert_eq!(
            resolve_with("203.0.113.9", &["198.51.100.1"], &["127.0.0.1/32"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusted_proxy_chain_yields_the_first_untrusted_hop() {
        let trusted = ["127.0.0.1/32", "10.0.0.0/8"];
        // The client forged the leftmost entry; the proxies appended the real hops.
        let got = resolve_with("127.0.0.1", &["6.6.6.6, 198.51.100.7, 10.1.2.3"], &trusted);
        assert_eq!(got, ip("198.51.100.7"));
        let got = resolve_with("127.0.0.1", &["6.6.6.6", "198.51.100.7"], &trusted);
        assert_eq!(got, ip("198.51.100.7"));
    }

    #[test]
    fn garbage_in_the_header_stops_the_walk() {
        let got = resolve_with("127.0.0.1", &["198.51.100.7, not-an-ip"], &["127.0.0.1/32"]);
        assert_eq!(got, ip("127.0.0.1"));
    }

    #[test]
    fn mapped_ipv6_addresses_are_canonical() {
        assert_eq!(resolve_with("::ffff:192.0.2.1", &[], &[]), ip("192.0.2.1"));
    }
}
