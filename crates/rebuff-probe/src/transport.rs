//! The only way the probe sends anything: one client, one origin, a request budget.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use rebuff_core::Catalog;
use reqwest::Url;

use crate::check::Answer;
use crate::error::Error;

/// The most of a body the probe reads; the rest is dropped.
const MAX_BODY: usize = 1024 * 1024;

/// One request, relative to the target's origin.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: Method,
    /// Path and query, starting with `/`.
    pub(crate) path: String,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Option<Vec<u8>>,
}

impl Request {
    pub(crate) fn new(method: Method, path: impl Into<String>) -> Self {
        Request { method, path: path.into(), headers: Vec::new(), body: None }
    }

    pub(crate) fn header(mut self, name: HeaderName, value: &str) -> Self {
        // Every value the probe sends is its own or the caller's key; a key that is not a
        // valid header value is left out rather than sent mangled.
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    /// Appends `pair` (already encoded) to the query string.
    pub(crate) fn query(mut self, pair: &str) -> Self {
        self.path.push(if self.path.contains('?') { '&' } else { '?' });
        self.path.push_str(pair);
        self
    }

    pub(crate) fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }
}

/// Why a request got no answer.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The budget is spent; nothing was sent.
    Budget,
    /// The first request found nobody there.
    Unreachable(Error),
    /// Sent, but no (whole) answer: the message says what happened.
    Failed(String),
    /// The API kept answering 429 past what the probe may wait: the message says so.
    RateLimited(String),
}

/// A client bound to one origin that never sends more than `max` requests.
#[derive(Debug)]
pub(crate) struct Transport {
    client: reqwest::Client,
    origin: Url,
    max: usize,
    sent: usize,
    catalog: Option<Catalog>,
}

impl Transport {
    pub(crate) fn new(
        origin: Url,
        max: usize,
        timeout: Duration,
        catalog: Option<Catalog>,
        roots: &[Vec<u8>],
    ) -> Result<Self, Error> {
        let mut builder = reqwest::Client::builder();
        // The webpki roots are always trusted; `--cacert` adds a private CA beside them.
        for pem in roots {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| Error::usage(format!("--cacert: not a PEM certificate: {}", chain(&e))))?;
            if certs.is_empty() {
                return Err(Error::usage("--cacert: no PEM certificate in the file"));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            // A redirect could lead anywhere: the probe reports it instead of following it.
            .redirect(reqwest::redirect::Policy::none())
            // Only the target's own host is ever contacted, so no proxy from the environment.
            .no_proxy()
            // A fresh connection for every request: servers close theirs after a crash (a
            // 500) or a refused body, and a pooled one would then fail the next provocation.
            .pool_max_idle_per_host(0)
            .timeout(timeout)
            .user_agent(concat!("rebuff-probe/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::usage(format!("cannot build the HTTP client: {}", chain(&e))))?;
        Ok(Transport { client, origin, max, sent: 0, catalog })
    }

    pub(crate) fn sent(&self) -> usize {
        self.sent
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }

    pub(crate) fn remaining(&self) -> usize {
        self.max.saturating_sub(self.sent)
    }

    /// The absolute URL of a path on the target.
    pub(crate) fn url(&self, path: &str) -> Url {
        let mut url = self.origin.clone();
        let (p, q) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
        url.set_path(p);
        url.set_query(q);
        url
    }

    pub(crate) async fn send(&mut self, req: &Request) -> Result<Answer, SendError> {
        if self.sent >= self.max {
            return Err(SendError::Budget);
        }
        let url = self.url(&req.path);
        if !same_origin(&url, &self.origin) {
            // Cannot happen with paths, but the promise is worth a check.
            return Err(SendError::Failed(format!("refused: {url} is not on {}", self.origin)));
        }
        self.sent += 1;
        let first = self.sent == 1;
        let mut builder = self.client.request(req.method.clone(), url.clone());
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        let mut res = match builder.send().await {
            Ok(res) => res,
            Err(e) if first && (e.is_connect() || e.is_timeout()) => {
                return Err(SendError::Unreachable(Error::unreachable(format!(
                    "cannot reach {}: {}",
                    self.origin.as_str().trim_end_matches('/'),
                    chain(&e)
                ))));
            }
            Err(e) => return Err(SendError::Failed(format!("no answer: {}", chain(&e)))),
        };
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let mut body = Vec::new();
        loop {
            match res.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_BODY - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if body.len() >= MAX_BODY {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(SendError::Failed(format!(
                        "{status}, then the body broke off: {}",
                        chain(&e)
                    )));
                }
            }
        }
        Ok(Answer::new(status, headers, body, self.catalog.as_ref()))
    }
}

/// Same scheme, host and port.
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// An error and its causes on one line (reqwest's own message leaves out the cause).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}
