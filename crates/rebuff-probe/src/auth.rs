//! Where credentials go: as the OpenAPI document's security scheme says, or `--auth-header`.
//!
//! The malformed and unknown credentials of the authentication provocations go to the same
//! place as the real one: an API that reads `X-API-Key` never sees an `Authorization` header
//! the probe sends instead, so that would test nothing.

use std::fmt;

use base64::Engine as _;
use http::HeaderName;
use http::header::{AUTHORIZATION, COOKIE};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::transport::Request;

/// Where a credential goes in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Placement {
    /// `Authorization: Bearer KEY` (`http` `bearer`, OAuth 2, OpenID Connect, and the default).
    Bearer,
    /// `Authorization: Basic base64(KEY)`, the key being `user:password` (`http` `basic`).
    Basic,
    /// A header of its own whose value is the key as it is (`apiKey` in a header, or
    /// `--auth-header`).
    Header(HeaderName),
    /// A query parameter (`apiKey` in the query).
    Query(String),
    /// A cookie (`apiKey` in a cookie).
    Cookie(String),
}

/// A credential that is no key at all: the same characters in every place, each of which
/// a key check refuses before a lookup.
const MALFORMED: &str = "!!not-a-key!!";

impl Placement {
    /// The placement a security scheme object (`components.securitySchemes.*`) describes;
    /// `None` for what the probe cannot send (`http` `digest`, `mutualTLS`, a scheme without
    /// a name).
    pub(crate) fn from_scheme(scheme: &Value) -> Option<Self> {
        let ty = scheme.get("type").and_then(Value::as_str)?;
        match ty {
            "apiKey" => {
                let name = scheme.get("name").and_then(Value::as_str).filter(|n| !n.is_empty())?;
                match scheme.get("in").and_then(Value::as_str)? {
                    "header" => {
                        let header = HeaderName::try_from(name).ok()?;
                        Some(if header == AUTHORIZATION {
                            Placement::Bearer
                        } else {
                            Placement::Header(header)
                        })
                    }
                    "query" => Some(Placement::Query(name.to_owned())),
                    "cookie" => Some(Placement::Cookie(name.to_owned())),
                    _ => None,
                }
            }
            "http" => match scheme.get("scheme").and_then(Value::as_str)?.to_ascii_lowercase().as_str() {
                "bearer" => Some(Placement::Bearer),
                "basic" => Some(Placement::Basic),
                _ => None,
            },
            "oauth2" | "openIdConnect" => Some(Placement::Bearer),
            _ => None,
        }
    }

    /// `--auth-header NAME`: the key as it is in that header.
    ///
    /// # Errors
    /// The name is not a valid header name.
    pub(crate) fn header(name: &str) -> Result<Self, String> {
        HeaderName::try_from(name.trim())
            .map(Placement::Header)
            .map_err(|_| format!("--auth-header `{name}` is not a header name"))
    }

    /// `req` with `credential` where it goes.
    pub(crate) fn apply(&self, req: Request, credential: &str) -> Request {
        match self {
            Placement::Bearer => req.header(AUTHORIZATION, &format!("Bearer {credential}")),
            Placement::Basic => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(credential);
                req.header(AUTHORIZATION, &format!("Basic {encoded}"))
            }
            Placement::Header(name) => req.header(name.clone(), credential),
            Placement::Query(name) => {
                let pair = format!(
                    "{}={}",
                    utf8_percent_encode(name, QUERY_UNSAFE),
                    utf8_percent_encode(credential, QUERY_UNSAFE)
                );
                req.query(&pair)
            }
            // Cookie values cannot carry everything a key may hold: encode what they cannot.
            Placement::Cookie(name) => {
                req.header(COOKIE, &format!("{name}={}", utf8_percent_encode(credential, COOKIE_UNSAFE)))
            }
        }
    }

    /// `req` with a credential that is not a key at all, in the same place.
    pub(crate) fn apply_malformed(&self, req: Request) -> Request {
        match self {
            // Not base64: refused before any user is looked up.
            Placement::Basic => req.header(AUTHORIZATION, &format!("Basic {MALFORMED}")),
            _ => self.apply(req, MALFORMED),
        }
    }
}

/// Everything but RFC 3986's unreserved characters, in a query name or value.
const QUERY_UNSAFE: &percent_encoding::AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// What a cookie value may not hold (RFC 6265 `cookie-octet`), plus `%` itself.
const COOKIE_UNSAFE: &percent_encoding::AsciiSet =
    &percent_encoding::CONTROLS.add(b' ').add(b'"').add(b',').add(b';').add(b'\\').add(b'%');

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placement::Bearer => f.write_str("Authorization: Bearer"),
            Placement::Basic => f.write_str("Authorization: Basic"),
            Placement::Header(name) => write!(f, "header {name}"),
            Placement::Query(name) => write!(f, "query parameter {name}"),
            Placement::Cookie(name) => write!(f, "cookie {name}"),
        }
    }
}

impl Serialize for Placement {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sent(p: &Placement, key: &str) -> (String, Vec<(String, String)>) {
        let r = p.apply(Request::new(http::Method::GET, "/v1/things?limit=2"), key);
        let headers =
            r.headers.iter().map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned())).collect();
        (r.path, headers)
    }

    #[test]
    fn schemes_say_where_the_key_goes() {
        let p = |v: Value| Placement::from_scheme(&v);
        assert_eq!(
            p(json!({"type": "apiKey", "in": "header", "name": "X-API-Key"})),
            Some(Placement::Header(HeaderName::from_static("x-api-key")))
        );
        assert_eq!(
            p(json!({"type": "apiKey", "in": "query", "name": "api_key"})),
            Some(Placement::Query("api_key".into()))
        );
        assert_eq!(
            p(json!({"type": "apiKey", "in": "cookie", "name": "sid"})),
            Some(Placement::Cookie("sid".into()))
        );
        assert_eq!(p(json!({"type": "http", "scheme": "Bearer"})), Some(Placement::Bearer));
        assert_eq!(p(json!({"type": "http", "scheme": "basic"})), Some(Placement::Basic));
        assert_eq!(p(json!({"type": "oauth2", "flows": {}})), Some(Placement::Bearer));
        assert_eq!(p(json!({"type": "http", "scheme": "digest"})), None);
        assert_eq!(p(json!({"type": "mutualTLS"})), None);
        assert_eq!(p(json!({"type": "apiKey", "in": "header"})), None);
    }

    #[test]
    fn credentials_land_where_the_scheme_says() {
        let h = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        assert_eq!(
            sent(&Placement::Bearer, "k1"),
            ("/v1/things?limit=2".into(), h("authorization", "Bearer k1"))
        );
        assert_eq!(
            sent(&Placement::Basic, "ada:pw"),
            ("/v1/things?limit=2".into(), h("authorization", "Basic YWRhOnB3"))
        );
        assert_eq!(
            sent(&Placement::Query("api key".into()), "a&b"),
            ("/v1/things?limit=2&api%20key=a%26b".into(), vec![])
        );
        assert_eq!(
            sent(&Placement::Cookie("sid".into()), "a;b"),
            ("/v1/things?limit=2".into(), h("cookie", "sid=a%3Bb"))
        );
        let m = Placement::Basic.apply_malformed(Request::new(http::Method::GET, "/"));
        assert_eq!(m.headers[0].1, "Basic !!not-a-key!!");
        let m = Placement::Query("key".into()).apply_malformed(Request::new(http::Method::GET, "/x"));
        assert_eq!(m.path, "/x?key=%21%21not-a-key%21%21");
        assert!(Placement::header("bad header").is_err());
    }
}
