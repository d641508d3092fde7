//! The client's IP address, for the login and device-code throttles and the audit log.
//!
//! Behind a load balancer every peer address is the balancer's, which would turn each per-IP
//! throttle into one global throttle. `X-Forwarded-For` fixes that, but anyone can send it,
//! so it is read only when the peer is a configured trusted proxy, and then from the right:
//! the first address not itself a trusted proxy is the client (entries further left were
//! written by the client and prove nothing).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use crate::oauth::error::OAuthError;
use crate::state::AppState;

/// The client's address: the peer, or what trusted proxies say it is.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = OAuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, OAuthError> {
        // `server` puts the peer on every request. Without one there is no address to count
        // guesses against, and no sentinel stands in for it: that would pool every such
        // request under one throttle key.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or_else(|| {
                OAuthError::internal("a request without its connection's peer address")
            })?;
        Ok(ClientIp(resolve(
            peer,
            &parts.headers,
            &state.trusted_proxies,
        )))
    }
}

/// The browser a page talks to: its address, and the user agent it names itself by (cut to
/// 256 bytes). Both are recorded with a session, for the account page's list of sessions.
#[derive(Debug, Clone)]
pub struct Browser {
    pub ip: IpAddr,
    pub user_agent: Option<String>,
}

impl Browser {
    /// Where a second-factor code was typed, for the app `client_id` if any.
    pub fn at<'a>(&self, client_id: Option<&'a str>) -> crate::core::mfa::Where<'a> {
        crate::core::mfa::Where {
            ip: self.ip,
            client_id,
        }
    }
}

/// How much of a `User-Agent` a session keeps: enough to name the browser and system.
const USER_AGENT_BYTES: usize = 256;

impl FromRequestParts<AppState> for Browser {
    type Rejection = OAuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, OAuthError> {
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| {
                let mut end = ua.len().min(USER_AGENT_BYTES);
                while !ua.is_char_boundary(end) {
                    end -= 1;
                }
                ua[..end].to_owned()
            })
            .filter(|ua| !ua.is_empty());
        Ok(Browser { ip, user_agent })
    }
}

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|n| n.contains(&ip))
}

/// The client address given the peer, its headers and the trusted proxy networks.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    if !trusted(peer, proxies) {
        return peer;
    }
    // Several headers are one list, in order (RFC 9110 §5.3).
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !trusted(ip, proxies) {
                    break;
                }
            }
            // A malformed hop ends what can be believed; keep the last good address.
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().expect("net")).collect()
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(v).expect("value"));
        h
    }

    #[test]
    fn untrusted_peers_are_taken_at_their_word() {
        let peer: IpAddr = "198.51.100.7".parse().expect("ip");
        let got = resolve(peer, &xff("203.0.113.9"), &nets(&["10.0.0.0/8"]));
        assert_eq!(got, peer, "a client cannot pick its own address");
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let proxies = nets(&["10.0.0.0/8"]);
        let peer: IpAddr = "10.0.0.2".parse().expect("ip");
        // The client claimed 1.2.3.4; the edge proxy saw 203.0.113.9; an inner proxy 10.0.0.5.
        let got = resolve(peer, &xff("1.2.3.4, 203.0.113.9, 10.0.0.5"), &proxies);
        assert_eq!(got.to_string(), "203.0.113.9");
        assert_eq!(resolve(peer, &HeaderMap::new(), &proxies), peer);
        let got = resolve(peer, &xff("garbage, 10.0.0.9"), &proxies);
        assert_eq!(got.to_string(), "10.0.0.9");
    }
}
