//! The client's address, also behind reverse proxies: [`ClientIpLayer`] reads `Forwarded`
//! (RFC 7239) or `X-Forwarded-For` only from hops it is told to trust, and [`client_ip`] is
//! what the other layers (IP allow-lists, throttles) and handlers use.
//!
//! Behind a proxy every request arrives from the proxy's address, so per-address limits and
//! allow-lists would treat all clients as one. A forwarding header is only as honest as the
//! hop that wrote it, though: the address taken is the right-most one that is not a trusted
//! proxy, so a client cannot choose its address by sending the header itself. Without trusted
//! proxies the headers are ignored, and the address is the TCP peer's.
//!
//! ```
//! use axum::{Router, routing::get};
//! use rebuff_axum::client_ip::{ClientIp, ClientIpLayer};
//!
//! let app: Router = Router::new()
//!     .route("/ip", get(|ClientIp(ip): ClientIp| async move { ip.to_string() }))
//!     .layer(ClientIpLayer::new(vec!["10.0.0.0/8".parse().unwrap()]));
//! # let _ = app;
//! ```

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, FromRequestParts};
use http::request::Parts;
use http::{Extensions, HeaderMap, HeaderName, Request};
use ipnet::IpNet;
use tower::{Layer, Service};

use crate::{ApiError, Code};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The client's address as [`ClientIpLayer`] found it. Also an extractor, which answers a
/// masked `internal_error` when no address is known (a server run without `ConnectInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The client's address: what [`ClientIpLayer`] found, else the TCP peer from axum's
/// `ConnectInfo<SocketAddr>`; IPv4-mapped IPv6 addresses as IPv4, so that `10.0.0.0/8`
/// matches a dual-stack listener's `::ffff:10.1.2.3`.
pub fn client_ip(extensions: &Extensions) -> Option<IpAddr> {
    if let Some(ClientIp(ip)) = extensions.get::<ClientIp>() {
        return Some(*ip);
    }
    extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip().to_canonical())
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        client_ip(&parts.extensions).map(ClientIp).ok_or_else(|| {
            ApiError::new(Code::InternalError).cause("no client address: serve with ConnectInfo")
        })
    }
}

/// Finds the client's address (see the [module documentation](self)) for [`client_ip`] and
/// the [`ClientIp`] extractor: an address forwarded by a trusted proxy goes in the request
/// extensions as [`ClientIp`]; the TCP peer's is read from `ConnectInfo` where it is.
#[derive(Debug, Clone)]
pub struct ClientIpLayer {
    trusted: Arc<[IpNet]>,
}

impl ClientIpLayer {
    /// Trusts forwarding headers written by hops in `trusted` (none: the headers are ignored).
    pub fn new(trusted: Vec<IpNet>) -> Self {
        ClientIpLayer { trusted: trusted.into() }
    }
}

impl<S> Layer<S> for ClientIpLayer {
    type Service = ClientIpService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ClientIpService { inner, trusted: self.trusted.clone() }
    }
}

/// The service of [`ClientIpLayer`].
#[derive(Debug, Clone)]
pub struct ClientIpService<S> {
    inner: S,
    trusted: Arc<[IpNet]>,
}

impl<S, B> Service<Request<B>> for ClientIpService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let peer =
            req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(a)| a.ip().to_canonical());
        if let Some(peer) = peer {
            let ip = resolve(peer, req.headers(), &self.trusted);
            // The peer itself (no trusted proxy in front) is what `client_ip` reads from
            // `ConnectInfo` anyway: only another address is inserted, which spares most
            // requests an extension (an allocation, and often a growth of the map).
            if ip == peer {
                req.extensions_mut().remove::<ClientIp>();
            } else {
                req.extensions_mut().insert(ClientIp(ip));
            }
        }
        self.inner.call(req)
    }
}

/// The right-most address that is not a trusted proxy, walking from the peer back through the
/// forwarding header; where a hop cannot be read (`unknown`, an obfuscated name), the last
/// address read.
fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_for(headers).iter().rev() {
        let Some(ip) = hop else { break };
        client = *ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// The `for` addresses of `Forwarded`, or if there is none of `X-Forwarded-For`, first hop
/// first; `None` for a hop that is not an address. Hand-written: the grammar needed is a few
/// lines, and no well-kept crate covers both headers.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values =
        |name| headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
    let forwarded: Vec<Option<IpAddr>> = values(http::header::FORWARDED)
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, value)| parse_node(value))
        })
        .collect();
    if !forwarded.is_empty() {
        return forwarded;
    }
    values(X_FORWARDED_FOR).map(parse_node).collect()
}

/// An address from `1.2.3.4`, `"1.2.3.4:80"`, `[2001:db8::1]`, `"[2001:db8::1]:80"` or
/// `2001:db8::1`.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).and_then(|t| t.parse::<IpAddr>().ok())
}

impl From<ClientIp> for IpAddr {
    fn from(ClientIp(ip): ClientIp) -> Self {
        ip
    }
}

/// For `Option<ClientIp>` in handlers.
impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(client_ip(&parts.extensions).map(ClientIp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_with(peer: &str, header: (&str, &str), trusted: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_bytes(header.0.as_bytes()).unwrap_or(X_FORWARDED_FOR),
            http::HeaderValue::from_str(header.1).unwrap_or_else(|_| http::HeaderValue::from_static("")),
        );
        let trusted: Vec<IpNet> = trusted.iter().filter_map(|t| t.parse().ok()).collect();
        resolve(peer.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])), &headers, &trusted).to_string()
    }

    #[test]
    fn only_trusted_hops_are_believed() {
        let xff = "x-forwarded-for";
        assert_eq!(resolve_with("10.0.0.1", (xff, "1.2.3.4"), &[]), "10.0.0.1", "no trusted proxy");
        assert_eq!(
            resolve_with("192.0.2.1", (xff, "1.2.3.4"), &["10.0.0.0/8"]),
            "192.0.2.1",
            "untrusted peer"
        );
        assert_eq!(resolve_with("10.0.0.1", (xff, "1.2.3.4"), &["10.0.0.0/8"]), "1.2.3.4");
        assert_eq!(resolve_with("10.0.0.1", (xff, "6.6.6.6, 1.2.3.4, 10.0.0.2"), &["10.0.0.0/8"]), "1.2.3.4");
        assert_eq!(resolve_with("10.0.0.1", (xff, "garbage, 10.0.0.2"), &["10.0.0.0/8"]), "10.0.0.2");
        assert_eq!(resolve_with("10.0.0.1", (xff, "10.0.0.3"), &["10.0.0.0/8"]), "10.0.0.3", "all trusted");
        let fwd = "forwarded";
        assert_eq!(
            resolve_with(
                "10.0.0.1",
                (fwd, r#"for=6.6.6.6, for="[2001:db8::17]:4711";proto=https"#),
                &["10.0.0.0/8"]
            ),
            "2001:db8::17"
        );
        assert_eq!(
            resolve_with("10.0.0.1", (fwd, "for=\"1.2.3.4:80\";by=10.0.0.1"), &["10.0.0.0/8"]),
            "1.2.3.4"
        );
        assert_eq!(resolve_with("10.0.0.1", (fwd, "for=unknown"), &["10.0.0.0/8"]), "10.0.0.1");
        assert_eq!(resolve_with("::ffff:10.0.0.1", (xff, "::ffff:1.2.3.4"), &["10.0.0.0/8"]), "1.2.3.4");
    }

    /// What the inner service sees: the [`ClientIp`] extension and what [`client_ip`] reads,
    /// for a request from `peer` with `X-Forwarded-For: forwarded`, optionally carrying a
    /// `ClientIp` put there before the layer.
    fn seen(peer: [u8; 4], forwarded: &str, trusted: &str, stale: bool) -> (Option<IpAddr>, Option<IpAddr>) {
        use tower::ServiceExt;

        let inner = tower::service_fn(|req: Request<()>| async move {
            let ext = req.extensions().get::<ClientIp>().map(|ClientIp(ip)| *ip);
            Ok::<_, Infallible>((ext, client_ip(req.extensions())))
        });
        let trusted = trusted.parse().map(|net| vec![net]).unwrap_or_default();
        let mut req = Request::get("/").header(X_FORWARDED_FOR, forwarded).body(()).expect("a request");
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from((peer, 4000))));
        if stale {
            req.extensions_mut().insert(ClientIp(IpAddr::from([9, 9, 9, 9])));
        }
        let call = ClientIpLayer::new(trusted).layer(inner).oneshot(req);
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        rt.block_on(call).unwrap_or_else(|never| match never {})
    }

    #[test]
    fn only_a_forwarded_address_is_inserted() {
        let (peer, client) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([1, 2, 3, 4]));
        assert_eq!(seen([10, 0, 0, 1], "1.2.3.4", "10.0.0.0/8", false), (Some(client), Some(client)));
        // No trusted proxy: the peer, read from ConnectInfo, with no extension of its own.
        assert_eq!(seen([10, 0, 0, 1], "1.2.3.4", "", false), (None, Some(peer)));
        // A ClientIp put there before the layer does not outlive its answer.
        assert_eq!(seen([10, 0, 0, 1], "1.2.3.4", "", true), (None, Some(peer)));
        assert_eq!(seen([10, 0, 0, 1], "1.2.3.4", "10.0.0.0/8", true), (Some(client), Some(client)));
    }
}
