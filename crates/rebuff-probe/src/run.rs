//! Running a probe: the routes, the provocations in order, the checks across answers.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderName, Method};
use rebuff_core::{Catalog, Envelope};
use reqwest::Url;
use serde_json::Value;

use crate::auth::Placement;
use crate::check::{self, Answer, Check, CheckResult, Expect};
use crate::error::Error;
use crate::plan::{self, Access, Operation, Routes};
use crate::provocation::Provocation;
use crate::report::{self, Coverage, Exchange, Feature, FeatureStatus, Report};
use crate::transport::{Request, SendError, Transport, same_origin};

/// The malformed JSON sent: cut off in the middle of an array.
const MALFORMED_JSON: &str = "{\"rebuff_probe\": [1, 2,";

/// How big the oversize body is: over the 1 MiB and 2 MB defaults of common servers
/// (nginx, axum) so that a default limit answers 413.
pub const OVERSIZE_BYTES: usize = 2 * 1024 * 1024 + 1024;

/// The invalid id: no id scheme allows `!`.
const INVALID_ID: &str = "!not-an-id!";

/// How many more collections than the first the probe lists for ids to imitate.
const EXTRA_LISTINGS: usize = 2;

/// How often one request is sent again after a 429 before the probe stops.
const RATE_LIMIT_RETRIES: usize = 3;

/// What to probe and how. Messages about it name the `rebuff probe` flags (`--key`, ...).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The API's base URL (`http://127.0.0.1:8080`, or a collection such as
    /// `http://host/v1/things` when there is no OpenAPI document); `https://` too.
    pub url: String,
    /// An API key, sent where the OpenAPI document's security scheme says (a bearer token
    /// without one; `user:password` for `http` `basic`). Without one, provocations behind
    /// authentication are skipped.
    pub key: Option<String>,
    /// The header the key goes in as it is (`X-API-Key`), for APIs without a document; it
    /// overrides the document's security scheme.
    pub auth_header: Option<String>,
    /// An OpenAPI document: a local file, or a URL on the target's own host.
    pub openapi: Option<String>,
    /// A built-in profile (`rebuff`, `arize`, ...): every error must be in its dialect.
    /// Without one, every error must be in the dialect most errors are in.
    pub profile: Option<String>,
    /// Features the API must offer: without them, each is one finding. Features not listed
    /// and not offered are reported as not offered, neither passed nor failed.
    pub expect: Vec<Feature>,
    /// The most requests to send, everything included.
    pub max_requests: usize,
    /// How long one request may take.
    pub timeout: Duration,
    /// How long the probe may wait, in all, when the API rate-limits it; past that it stops.
    pub max_wait: Duration,
    /// Whether to send requests past the rate limit to see a 429 (bounded by
    /// `max_requests`).
    pub burst: bool,
    /// PEM certificates (a private CA) to trust beside the webpki roots, for `https://`.
    pub root_certificates: Vec<Vec<u8>>,
}

impl Config {
    /// Defaults for a URL: no key, no document, at most 60 requests, 10 s each, up to 120 s
    /// of waiting on a rate limit, no burst.
    pub fn new(url: impl Into<String>) -> Self {
        Config {
            url: url.into(),
            key: None,
            auth_header: None,
            openapi: None,
            profile: None,
            expect: Vec::new(),
            max_requests: 60,
            timeout: Duration::from_secs(10),
            max_wait: Duration::from_secs(120),
            burst: false,
            root_certificates: Vec::new(),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("url", &self.url)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("auth_header", &self.auth_header)
            .field("openapi", &self.openapi)
            .field("profile", &self.profile)
            .field("expect", &self.expect)
            .field("max_requests", &self.max_requests)
            .field("timeout", &self.timeout)
            .field("max_wait", &self.max_wait)
            .field("burst", &self.burst)
            .field("root_certificates", &self.root_certificates.len())
            .finish()
    }
}

/// What happens while a probe runs, for progress output.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Something the probe assumed or could not do, or a wait on the API's rate limit.
    Note(&'a str),
    /// A provocation was answered (or skipped); its own checks are made, the checks across
    /// answers come at the end.
    Exchange {
        /// This provocation's number, from 1.
        index: usize,
        /// How many provocations the probe plans.
        total: usize,
        /// Requests sent so far (documents and listings included).
        sent: usize,
        /// The most that will be sent.
        max: usize,
        /// The provocation.
        exchange: &'a Exchange,
    },
}

/// Runs a probe without progress output.
///
/// # Errors
/// See [`run_with`].
pub async fn run(config: &Config) -> Result<Report, Error> {
    run_with(config, |_| {}).await
}

/// Runs a probe, telling `on_event` what happens as it goes.
///
/// # Errors
/// [`ErrorKind::Usage`](crate::ErrorKind::Usage) for a URL, document, certificate or header
/// name the probe cannot use (including an OpenAPI URL on another host), or a key the API
/// refuses; [`ErrorKind::Unreachable`](crate::ErrorKind::Unreachable) when the first request
/// finds nobody there (or no TLS handshake succeeds).
pub async fn run_with(config: &Config, mut on_event: impl FnMut(Event<'_>)) -> Result<Report, Error> {
    let base =
        Url::parse(&config.url).map_err(|e| Error::usage(format!("`{}` is not a URL: {e}", config.url)))?;
    match base.scheme() {
        "http" | "https" => {}
        other => return Err(Error::usage(format!("`{}`: `{other}` is not http or https", config.url))),
    }
    if base.host_str().is_none_or(str::is_empty) {
        return Err(Error::usage(format!("`{}` has no host", config.url)));
    }
    if config.max_requests == 0 {
        return Err(Error::usage("--max-requests must be at least 1"));
    }
    let auth_header =
        config.auth_header.as_deref().map(Placement::header).transpose().map_err(Error::usage)?;
    let catalog = match config.profile.as_deref() {
        None => None,
        Some(name) => Some(
            Catalog::builtin(name)
                .cloned()
                .ok_or_else(|| Error::usage(format!("no built-in profile `{name}`")))?,
        ),
    };
    let local_doc = match config.openapi.as_deref() {
        Some(spec) if !is_url(spec) => Some(read_local(spec)?),
        _ => None,
    };
    let mut origin = base.clone();
    origin.set_path("/");
    origin.set_query(None);
    origin.set_fragment(None);
    let transport = Transport::new(
        origin,
        config.max_requests,
        config.timeout,
        catalog.clone(),
        &config.root_certificates,
    )?;
    let mut run = Run {
        t: transport,
        key: config.key.clone(),
        placement: Placement::Bearer,
        catalog,
        notes: Vec::new(),
        done: Vec::new(),
        nonce: nonce(),
        index: 0,
        total: 0,
        max_wait: config.max_wait,
        waited: Duration::ZERO,
        pause: None,
        stopped: None,
        request_id_seen: None,
        rate_headers_seen: None,
        told_waiting: false,
        idempotency_offered: false,
    };
    let mut routes = run.routes(config, &base, local_doc, &mut on_event).await?;
    if let Some(p) = auth_header {
        routes.credentials = p;
        for op in &mut routes.operations {
            if matches!(op.access, Access::Other(_)) {
                op.access = Access::Key;
            }
        }
    }
    run.placement = routes.credentials.clone();
    if routes.source != "guessed" {
        let text = format!(
            "routes ({}): {} operations; GET {}, GET {}, POST {} first; the key as {}",
            routes.source,
            routes.operations.len(),
            routes.collection,
            routes.item,
            routes.create,
            routes.credentials
        );
        on_event(Event::Note(&text));
    }
    run.provoke(&routes, config, &mut on_event).await?;
    Ok(run.finish(config, routes))
}

fn is_url(spec: &str) -> bool {
    let lower = spec.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

fn read_local(path: &str) -> Result<Value, Error> {
    let text = std::fs::read(path).map_err(|e| Error::usage(format!("cannot read {path}: {e}")))?;
    serde_json::from_slice(&text)
        .map_err(|e| Error::usage(format!("{path} is not a JSON OpenAPI document (YAML is not read): {e}")))
}

/// A random hex string for the idempotency key, from the standard library's random hasher
/// keys (no extra dependency for 64 bits that need only differ between runs).
fn nonce() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// One planned provocation of one operation.
#[derive(Debug, Clone)]
struct Step {
    p: Provocation,
    /// Index into `routes.operations`.
    op: usize,
}

struct Run {
    t: Transport,
    key: Option<String>,
    placement: Placement,
    catalog: Option<Catalog>,
    notes: Vec<String>,
    done: Vec<(Exchange, Option<Answer>)>,
    nonce: String,
    /// Provocations recorded so far, and planned.
    index: usize,
    total: usize,
    /// The most the probe may wait on a rate limit, and how long it has.
    max_wait: Duration,
    waited: Duration,
    /// A wait the last answer asked for (its rate limit is spent) before the next request.
    pause: Option<Duration>,
    /// Why the probe stopped sending, when the API kept rate-limiting it.
    stopped: Option<String>,
    /// Where a request id was first seen, if one was.
    request_id_seen: Option<String>,
    /// The first rate-limit header seen, if one was.
    rate_headers_seen: Option<String>,
    told_waiting: bool,
    /// Whether the API offers idempotency keys, once the probe knows.
    idempotency_offered: bool,
}

/// What an answer's rate limit says to wait: `Retry-After` (seconds or an HTTP date), else
/// the `RateLimit` field's `t`, else `X-RateLimit-Reset` (seconds, or a Unix time).
fn retry_wait(a: &Answer) -> Option<Duration> {
    if let Some(v) = a.header(RETRY_AFTER) {
        let v = v.trim();
        if let Ok(secs) = v.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(at) = httpdate::parse_http_date(v) {
            return Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO));
        }
    }
    reset_after(a)
}

/// When the rate limit resets: `RateLimit`'s `t`, else `X-RateLimit-Reset`.
fn reset_after(a: &Answer) -> Option<Duration> {
    let t = a
        .header("ratelimit")
        .and_then(|f| {
            f.split([';', ',']).find_map(|p| p.trim().strip_prefix("t=")).and_then(|t| t.trim().parse().ok())
        })
        .or_else(|| a.header("x-ratelimit-reset").and_then(|v| v.trim().parse::<u64>().ok()))?;
    // A value past 2001 is a Unix time, not seconds from now.
    if t > 1_000_000_000 {
        let now = SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        return Some(Duration::from_secs(t.saturating_sub(now)));
    }
    Some(Duration::from_secs(t))
}

/// How long until a spent limit admits one more request: the policy's window over its quota
/// (`RateLimit-Policy: "default";q=60;w=60` is one a second), at most the time to the reset,
/// else a second. Waiting for the whole reset would idle through what refills meanwhile.
fn next_allowance(a: &Answer) -> Duration {
    let policy = a.header("ratelimit-policy").and_then(|p| {
        let param = |k: &str| {
            p.split([';', ','])
                .find_map(|x| x.trim().strip_prefix(k))
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        let (q, w) = (param("q=")?, param("w=")?);
        (q > 0.0).then(|| Duration::from_secs_f64(w / q))
    });
    let interval = policy.unwrap_or(Duration::from_secs(1));
    reset_after(a).map_or(interval, |r| interval.min(r))
}

/// The rate-limit header an answer carries, if any.
fn rate_header(a: &Answer) -> Option<&'static str> {
    ["ratelimit", "ratelimit-policy", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"]
        .into_iter()
        .find(|h| a.headers.contains_key(*h))
}

impl Run {
    fn note(&mut self, text: String, on_event: &mut impl FnMut(Event<'_>)) {
        on_event(Event::Note(&text));
        self.notes.push(text);
    }

    /// `req` with the key where it goes, if there is a key.
    fn authed(&self, req: Request) -> Request {
        match &self.key {
            Some(k) => self.placement.apply(req, k),
            None => req,
        }
    }

    /// Remembers what an answer shows about the API's features.
    fn observe(&mut self, req: &Request, a: &Answer) {
        if self.request_id_seen.is_none() {
            if a.header_request_id().is_some() {
                self.request_id_seen = Some(format!("X-Request-Id on {} {}", req.method, req.path));
            } else if a.body_request_id.is_some() {
                self.request_id_seen = Some(format!("in the body of {} {}", req.method, req.path));
            }
        }
        if self.rate_headers_seen.is_none()
            && let Some(h) = rate_header(a)
        {
            self.rate_headers_seen = Some(canonical_rate_header(h).to_owned());
        }
    }

    /// Sends a request, waiting (within `--max-wait`) when the API rate-limits the probe:
    /// before it, when the last answer said the limit is spent, and after a 429, to send it
    /// again. A 429 the probe could not wait out is [`SendError::RateLimited`], never a
    /// finding.
    async fn send(
        &mut self,
        req: &Request,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<Answer, SendError> {
        if let Some(why) = &self.stopped {
            return Err(SendError::RateLimited(why.clone()));
        }
        let mut tries = 0;
        loop {
            if let Some(wait) = self.pause.take()
                && !self.wait(wait, "its rate limit is spent", on_event).await
            {
                // Send anyway: the answer decides.
            }
            let a = self.t.send(req).await?;
            self.observe(req, &a);
            if a.status != 429 {
                if rate_remaining(&a) == Some(0) {
                    self.pause = Some(next_allowance(&a));
                }
                return Ok(a);
            }
            let wait = retry_wait(&a).unwrap_or(Duration::from_secs(1));
            tries += 1;
            if tries > RATE_LIMIT_RETRIES {
                return Err(self.stop(format!("429 to {} {} {} times", req.method, req.path, tries)));
            }
            if self.t.remaining() == 0 {
                return Err(self.stop(format!(
                    "429 to {} {}, and --max-requests leaves no request to send it again",
                    req.method, req.path
                )));
            }
            if !self.wait(wait, "it answered 429", on_event).await {
                return Err(self.stop(format!(
                    "429 to {} {} asking for {} s, past --max-wait ({} s waited of {})",
                    req.method,
                    req.path,
                    wait.as_secs(),
                    self.waited.as_secs(),
                    self.max_wait.as_secs()
                )));
            }
        }
    }

    /// Waits `d` if `--max-wait` allows it; `false` when it does not.
    async fn wait(&mut self, d: Duration, why: &str, on_event: &mut impl FnMut(Event<'_>)) -> bool {
        // Whole seconds are what the headers say; a zero still yields a short pause.
        let d = d.max(Duration::from_millis(200));
        if self.waited + d > self.max_wait {
            return false;
        }
        let text = format!("rate-limited ({why}): waiting {:.1} s, then going on", d.as_secs_f64());
        if self.told_waiting {
            on_event(Event::Note(&text));
        } else {
            self.told_waiting = true;
            self.note(
                format!("the API rate-limits the probe; it waits as asked (at most --max-wait in all); first: {text}"),
                on_event,
            );
        }
        tokio::time::sleep(d).await;
        self.waited += d;
        true
    }

    fn stop(&mut self, why: String) -> SendError {
        let text = format!("rate-limited: {why}; the rest is not sent");
        self.stopped = Some(text.clone());
        SendError::RateLimited(text)
    }

    /// Sends a request that is no provocation (a document, a listing). `Ok(None)` when it got
    /// no answer or the budget is spent.
    async fn fetch(
        &mut self,
        req: &Request,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<Option<Answer>, Error> {
        match self.send(req, on_event).await {
            Ok(a) => Ok(Some(a)),
            Err(SendError::Unreachable(e)) => Err(e),
            Err(SendError::Budget | SendError::Failed(_) | SendError::RateLimited(_)) => Ok(None),
        }
    }

    async fn routes(
        &mut self,
        config: &Config,
        base: &Url,
        local_doc: Option<Value>,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<Routes, Error> {
        let prefix = base.path().trim_end_matches('/').to_owned();
        let (doc, source) = match (config.openapi.as_deref(), local_doc) {
            (Some(path), Some(doc)) => (Some(doc), path.to_owned()),
            (Some(spec), None) => {
                let url =
                    Url::parse(spec).map_err(|e| Error::usage(format!("`{spec}` is not a URL: {e}")))?;
                if !same_origin(&url, base) {
                    return Err(Error::usage(format!(
                        "refusing to fetch the OpenAPI document from {}: the probe only talks to {}; \
                         download it and pass the file",
                        origin_of(&url),
                        origin_of(base)
                    )));
                }
                let mut path = url.path().to_owned();
                if let Some(q) = url.query() {
                    path = format!("{path}?{q}");
                }
                let req = self.authed(Request::new(Method::GET, path));
                let answer = match self.send(&req, on_event).await {
                    Ok(a) => a,
                    Err(SendError::Unreachable(e)) => return Err(e),
                    Err(SendError::Budget) => {
                        return Err(Error::usage("--max-requests leaves no request to probe with"));
                    }
                    Err(SendError::Failed(why) | SendError::RateLimited(why)) => {
                        return Err(Error::usage(format!("cannot fetch {spec}: {why}")));
                    }
                };
                if answer.status != 200 {
                    return Err(Error::usage(format!("cannot fetch {spec}: status {}", answer.status)));
                }
                let doc = answer
                    .json
                    .ok_or_else(|| Error::usage(format!("{spec} is not a JSON OpenAPI document")))?;
                (Some(doc), spec.to_owned())
            }
            (None, _) if prefix.is_empty() => {
                // At the root, the document is worth one request: real routes beat guesses.
                let req = self.authed(Request::new(Method::GET, "/openapi.json"));
                match self.fetch(&req, on_event).await? {
                    Some(a)
                        if a.status == 200 && a.json.as_ref().is_some_and(|d| d.get("paths").is_some()) =>
                    {
                        (a.json, "/openapi.json (found at the root)".to_owned())
                    }
                    _ => (None, String::new()),
                }
            }
            (None, _) => (None, String::new()),
        };
        match doc {
            Some(doc) => {
                let (routes, notes) = Routes::from_openapi(&doc, &source, &prefix)
                    .map_err(|e| Error::usage(format!("{source}: {e}")))?;
                for n in notes {
                    self.note(n, on_event);
                }
                Ok(routes)
            }
            None => {
                let routes = Routes::guessed(&prefix);
                self.note(
                    format!(
                        "no OpenAPI document (--openapi): guessing GET {0}, GET {1}, POST {0} under the URL",
                        routes.collection, routes.item
                    ),
                    on_event,
                );
                Ok(routes)
            }
        }
    }

    /// Sends one provocation and makes its own checks.
    async fn provoke_one(
        &mut self,
        p: Provocation,
        op: Option<&Operation>,
        req: Request,
        expect: Expect,
        first: Option<usize>,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<usize, Error> {
        let result = self.send(&req, on_event).await;
        self.record(p, op, &req, result, &expect, first, on_event)
    }

    /// Sends one provocation that expects what [`Provocation::expected`] says.
    async fn provoke_plain(
        &mut self,
        p: Provocation,
        op: Option<&Operation>,
        req: Request,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<usize, Error> {
        self.provoke_one(p, op, req, Expect::of(p.expected()), None, on_event).await
    }

    /// Records a provocation's answer (or why there is none) with its own checks.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        p: Provocation,
        op: Option<&Operation>,
        req: &Request,
        result: Result<Answer, SendError>,
        expect: &Expect,
        first: Option<usize>,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<usize, Error> {
        let mut ex = Exchange::new(p, req.method.as_str(), &req.path);
        ex.operation = op.map(Operation::name);
        let answer = match result {
            Ok(a) => Some(a),
            Err(SendError::Unreachable(e)) => return Err(e),
            Err(SendError::Budget) => {
                ex.note = Some(report::BUDGET_NOTE.into());
                None
            }
            // Being rate-limited says nothing about the error contract: no check, no finding.
            Err(SendError::RateLimited(why)) => {
                ex.note = Some(why);
                None
            }
            // A server may refuse a body by closing the connection while it is still being
            // written: its answer, if it sent one, cannot be read, so there is no status to
            // check.
            Err(SendError::Failed(why)) if p == Provocation::OversizeBody => {
                let text = format!("the connection closed while the 2 MiB body was sent: {why}");
                ex.checks.push(CheckResult::skip(Check::Status, text.clone()));
                ex.note = Some(text);
                None
            }
            Err(SendError::Failed(why)) => {
                ex.checks.push(CheckResult::fail(Check::Status, why.clone()));
                ex.note = Some(why);
                None
            }
        };
        if let Some(a) = &answer {
            let first = first.and_then(|i| self.done[i].1.as_ref());
            ex.status = Some(a.status);
            ex.content_type = a.header(CONTENT_TYPE).map(str::to_owned);
            ex.envelope = Some(a.envelope_name().to_owned());
            ex.request_id = a.parsed.request_id.clone();
            ex.checks = check::per_answer(a, expect, first);
            // What is no envelope, or not the profile's, is known now; consistency among
            // the others only at the end.
            let expected = self.catalog.as_ref().map(|c| Envelope::Dialect(c.dialect()));
            let seen = a.parsed.envelope;
            if a.is_error() && (!check::is_envelope(seen) || expected.is_some()) {
                ex.checks.insert(1, envelope_check(seen, expected, true, &[]));
            }
        }
        self.push(ex, answer, on_event);
        Ok(self.done.len() - 1)
    }

    fn push(&mut self, ex: Exchange, answer: Option<Answer>, on_event: &mut impl FnMut(Event<'_>)) {
        self.index += 1;
        self.total = self.total.max(self.index);
        on_event(Event::Exchange {
            index: self.index,
            total: self.total,
            sent: self.t.sent(),
            max: self.t.max(),
            exchange: &ex,
        });
        self.done.push((ex, answer));
    }

    fn skip(
        &mut self,
        p: Provocation,
        op: Option<&Operation>,
        method: &str,
        path: &str,
        why: &str,
        on_event: &mut impl FnMut(Event<'_>),
    ) {
        let mut ex = Exchange::new(p, method, path);
        ex.operation = op.map(Operation::name);
        ex.note = Some(why.to_owned());
        self.push(ex, None, on_event);
    }

    fn status_of(&self, i: Option<usize>) -> Option<u16> {
        i.and_then(|i| self.done[i].1.as_ref()).map(|a| a.status)
    }

    fn answer(&self, i: Option<usize>) -> Option<&Answer> {
        i.and_then(|i| self.done[i].1.as_ref())
    }

    /// The provocations each operation gets, in the order that matters most for it; the
    /// path's wrong method goes with the path's first operation.
    fn plan(routes: &Routes) -> Vec<Step> {
        use Provocation as P;
        let mut lists: Vec<Vec<Step>> = Vec::new();
        let mut paths_seen = BTreeSet::new();
        for (i, op) in routes.operations.iter().enumerate() {
            let mut list = Vec::new();
            if paths_seen.insert(op.path.clone()) {
                list.push(P::WrongMethod);
            }
            if !op.path_params.is_empty() {
                list.extend([P::ForeignId, P::InvalidId]);
            }
            if op.json_body.is_some() {
                list.extend([P::WrongBodyType, P::MalformedJson, P::MissingContentType, P::WrongContentType]);
                if i == 1 && op.method == Method::POST && op.path == routes.create {
                    list.push(P::OversizeBody);
                }
            }
            if op.typed_query.is_some() {
                list.push(P::WrongQueryType);
            }
            lists.push(list.into_iter().map(|p| Step { p, op: i }).collect());
        }
        // Round robin: every operation's first provocation, then every second one, ...
        let mut steps = Vec::new();
        let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
        for round in 0..longest {
            for list in &lists {
                if let Some(s) = list.get(round) {
                    steps.push(s.clone());
                }
            }
        }
        steps
    }

    async fn provoke(
        &mut self,
        routes: &Routes,
        config: &Config,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<(), Error> {
        use Provocation as P;
        let coll = routes.collection.as_str();
        let coll_op = routes.operations.iter().find(|o| o.method == Method::GET && o.path == coll).cloned();
        let has_key = self.key.is_some();
        let steps = Self::plan(routes);
        // Authentication (3), the unknown route, the steps, idempotency (3), the burst.
        self.total = 3 + 1 + steps.len() + 3 + 1;

        // Authentication: the first request tells whether the target is there at all.
        let none = self
            .provoke_plain(P::NoCredentials, coll_op.as_ref(), Request::new(Method::GET, coll), on_event)
            .await?;
        let malformed = self.placement.apply_malformed(Request::new(Method::GET, coll));
        self.provoke_plain(P::MalformedCredentials, coll_op.as_ref(), malformed, on_event).await?;
        let unknown_key = self
            .key
            .as_deref()
            .and_then(plan::foreign_like)
            .unwrap_or_else(|| "rebuff_probe_unknown_key_0000000000000000".to_owned());
        let unknown = self.placement.apply(Request::new(Method::GET, coll), &unknown_key);
        self.provoke_plain(P::UnknownCredentials, coll_op.as_ref(), unknown, on_event).await?;
        let blocked = match self.status_of(Some(none)) {
            Some(s @ (401 | 403)) if !has_key => {
                Some(format!("needs --key: {coll} answers {s} without credentials"))
            }
            _ => None,
        };

        // Listings: a key the API refuses would make every other answer a 401, and items'
        // ids are worth imitating for the foreign ids.
        let mut samples: HashMap<String, String> = HashMap::new();
        if blocked.is_none() {
            match self.fetch(&self.authed(Request::new(Method::GET, coll)), on_event).await? {
                Some(a) if has_key && matches!(a.status, 401 | 403) => {
                    return Err(Error::usage(format!(
                        "the API refuses --key (sent as {}): GET {coll} answered {} with it",
                        self.placement, a.status
                    )));
                }
                Some(a) if (200..300).contains(&a.status) => {
                    if let Some(id) = a.json.as_ref().and_then(plan::first_id) {
                        samples.insert(coll.to_owned(), id);
                    }
                }
                _ => {}
            }
            let mut others: Vec<&str> = Vec::new();
            for op in &routes.operations {
                if let Some(parent) = plan::parent(&op.path)
                    && parent != coll
                    && !others.contains(&parent)
                    && routes.operations.iter().any(|o| {
                        o.method == Method::GET
                            && o.path == parent
                            && o.access != Access::Other(String::new())
                            && !matches!(o.access, Access::Other(_))
                    })
                {
                    others.push(parent);
                }
            }
            for parent in others.into_iter().take(EXTRA_LISTINGS) {
                if let Some(a) = self.fetch(&self.authed(Request::new(Method::GET, parent)), on_event).await?
                    && (200..300).contains(&a.status)
                    && let Some(id) = a.json.as_ref().and_then(plan::first_id)
                {
                    samples.insert(parent.to_owned(), id);
                }
            }
        }

        // Routing. Without a key, an API that authenticates before it routes answers 401 first.
        let req = self.authed(Request::new(Method::GET, routes.unknown_route()));
        let mut expect = Expect::of(P::UnknownRoute.expected());
        if !has_key {
            expect.statuses.push(401);
        }
        let unknown_route = self.provoke_one(P::UnknownRoute, None, req, expect, None, on_event).await?;

        // Every operation, round robin, then idempotency after the first round.
        let first_round = {
            let mut seen = BTreeSet::new();
            steps.iter().take_while(|s| seen.insert(s.op)).count()
        };
        let mut foreign = Vec::new();
        let mut invalid = Vec::new();
        for (n, step) in steps.iter().enumerate() {
            if n == first_round {
                self.idempotency(routes, config, blocked.as_deref(), on_event).await?;
            }
            let op = &routes.operations[step.op];
            let i = self.step(routes, op, step.p, blocked.as_deref(), &samples, on_event).await?;
            match (step.p, i) {
                (P::ForeignId, Some(i)) => foreign.push(i),
                (P::InvalidId, Some(i)) => invalid.push(i),
                _ => {}
            }
        }
        if first_round >= steps.len() {
            self.idempotency(routes, config, blocked.as_deref(), on_event).await?;
        }

        // A 404 for a foreign id is shaped like any other 404.
        let other = std::iter::once(unknown_route)
            .chain(invalid.iter().copied())
            .find(|&i| self.status_of(Some(i)) == Some(404))
            .map(|i| (i, if i == unknown_route { "the unknown route" } else { "the invalid id" }));
        for f in foreign {
            let shape = match (self.answer(Some(f)).filter(|a| a.status == 404), other) {
                (None, _) => continue,
                (Some(_), None) => CheckResult::skip(Check::NotFoundShape, "no other 404 to compare with"),
                (Some(fa), Some((o, name))) => match self.answer(Some(o)) {
                    Some(oa) => check::not_found_shape(fa, oa, name),
                    None => continue,
                },
            };
            self.done[f].0.checks.push(shape);
        }

        // Rate limit, last: after it the caller is limited for a while.
        if let Some(why) = &blocked {
            self.skip(
                P::RateLimit,
                None,
                "GET",
                coll,
                if config.burst { why } else { "only with --burst" },
                on_event,
            );
            Ok(())
        } else if config.burst {
            self.burst(coll, on_event).await
        } else {
            self.skip(P::RateLimit, None, "GET", coll, "only with --burst", on_event);
            Ok(())
        }
    }

    /// One planned provocation of one operation; the index of its exchange when it was sent.
    async fn step(
        &mut self,
        routes: &Routes,
        op: &Operation,
        p: Provocation,
        blocked: Option<&str>,
        samples: &HashMap<String, String>,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<Option<usize>, Error> {
        use Provocation as P;
        let has_key = self.key.is_some();
        if let Access::Other(schemes) = &op.access
            && p != P::WrongMethod
        {
            let why = format!("needs credentials of scheme {schemes}, which the probe does not have");
            self.skip(p, Some(op), op.method.as_str(), &op.path, &why, on_event);
            return Ok(None);
        }
        if let Some(h) = &op.required_header
            && p != P::WrongMethod
        {
            let why = format!("needs a {h} header, which the probe cannot make");
            self.skip(p, Some(op), op.method.as_str(), &op.path, &why, on_event);
            return Ok(None);
        }
        let open = op.access == Access::Open;
        if let Some(why) = blocked
            && !open
            && p != P::WrongMethod
        {
            self.skip(p, Some(op), op.method.as_str(), &op.path, why, on_event);
            return Ok(None);
        }
        let sample = plan::parent(&op.path).and_then(|c| samples.get(c)).map(String::as_str);
        let schema = op.path_params.last().cloned().unwrap_or(Value::Null);
        let (foreign, guessed_uuid) = match plan::foreign_id(&schema, sample) {
            Some(id) => (id, false),
            None => (plan::FALLBACK_UUID.to_owned(), true),
        };
        let on_item = !op.path_params.is_empty();
        let path = if on_item { plan::fill(&op.path, &foreign) } else { op.path.clone() };
        let wrong = plan::wrong_body(op.json_body.as_ref(), 0);
        let bytes = |v: &Value| serde_json::to_vec(v).unwrap_or_default();
        let json = "application/json";
        let build = |method: Method, path: String, ct: Option<&str>, body: Option<Vec<u8>>| {
            let mut r = self.authed(Request::new(method, path));
            if let Some(ct) = ct {
                r = r.header(CONTENT_TYPE, ct);
            }
            if let Some(b) = body {
                r = r.body(b);
            }
            r
        };
        // An operation on an item may look the item up before it reads the body.
        let mut expect = Expect::of(p.expected());
        if on_item && !matches!(p, P::ForeignId | P::InvalidId) {
            expect.statuses.push(404);
        }
        let body_of = |op: &Operation| op.json_body.as_ref().map(|_| bytes(&wrong));
        let req = match p {
            P::WrongMethod => {
                let method = routes.wrong_method(&op.path);
                let mut e = Expect::of(p.expected());
                if (!has_key && !open) || matches!(op.access, Access::Other(_)) {
                    e.statuses.push(401);
                }
                e.allow = Some(routes.methods_of(&op.path).to_vec());
                let req = build(method, path, None, None);
                return Ok(Some(self.provoke_one(p, Some(op), req, e, None, on_event).await?));
            }
            P::ForeignId => {
                let ct = op.json_body.as_ref().map(|_| json);
                if op.json_body.is_some() {
                    expect.statuses.extend([400, 422]);
                } else if guessed_uuid {
                    let why = "the API does not take a UUID as an id, and there was no id to imitate";
                    expect.inconclusive.extend([(400, why.to_owned()), (422, why.to_owned())]);
                }
                build(op.method.clone(), path, ct, body_of(op))
            }
            P::InvalidId => {
                let ct = op.json_body.as_ref().map(|_| json);
                build(op.method.clone(), plan::fill(&op.path, INVALID_ID), ct, body_of(op))
            }
            P::WrongBodyType => build(op.method.clone(), path, Some(json), Some(bytes(&wrong))),
            P::MalformedJson => {
                build(op.method.clone(), path, Some(json), Some(MALFORMED_JSON.as_bytes().to_vec()))
            }
            P::MissingContentType => build(op.method.clone(), path, None, Some(bytes(&wrong))),
            P::WrongContentType => build(op.method.clone(), path, Some("text/plain"), Some(bytes(&wrong))),
            P::OversizeBody => {
                for s in [400, 415, 422] {
                    expect
                        .inconclusive
                        .push((s, "the API read the whole 2 MiB body: its limit may be higher".into()));
                }
                // A server that refuses a body without reading it closes the connection after
                // its answer; a pooled connection would then fail the next request.
                build(op.method.clone(), path, Some(json), Some(oversize_body(&wrong)))
                    .header(http::header::CONNECTION, "close")
            }
            P::WrongQueryType => {
                let Some((name, schema)) = &op.typed_query else { return Ok(None) };
                let value = plan::wrong_query_value(schema).unwrap_or("x");
                let ct = op.json_body.as_ref().map(|_| json);
                build(op.method.clone(), path, ct, body_of(op)).query(&format!("{name}={value}"))
            }
            _ => return Ok(None),
        };
        Ok(Some(self.provoke_one(p, Some(op), req, expect, None, on_event).await?))
    }

    /// Idempotency keys, when the API offers them: a fresh key, the same request again, the
    /// key with another payload. A document that declares no `Idempotency-Key` says the API
    /// does not offer them, and nothing is sent; without a document the replay tells.
    async fn idempotency(
        &mut self,
        routes: &Routes,
        config: &Config,
        blocked: Option<&str>,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<(), Error> {
        use Provocation as P;
        let create = routes.create.as_str();
        let op = routes.operations.iter().find(|o| o.method == Method::POST && o.path == create).cloned();
        let required = config.expect.contains(&Feature::IdempotencyKeys);
        let skip_all = |this: &mut Self, why: &str, on_event: &mut dyn FnMut(Event<'_>)| {
            for p in [P::IdempotencyFirst, P::IdempotencyReplay, P::IdempotencyReuse] {
                this.skip(p, op.as_ref(), "POST", create, why, &mut |e| on_event(e));
            }
        };
        if let Some(why) = blocked.filter(|_| op.as_ref().is_none_or(|o| o.access != Access::Open)) {
            skip_all(self, why, on_event);
            return Ok(());
        }
        if routes.declares_idempotency == Some(false) && !required {
            skip_all(self, "not offered: the document declares no Idempotency-Key header", on_event);
            return Ok(());
        }
        let post = |this: &Self, variant: u32| {
            this.authed(Request::new(Method::POST, create))
                .header(CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(&routes.wrong_body(variant)).unwrap_or_default())
                .header(HeaderName::from_static("idempotency-key"), &format!("rebuff-probe-{}", this.nonce))
        };
        let req = post(self, 1);
        let first = self.provoke_plain(P::IdempotencyFirst, op.as_ref(), req.clone(), on_event).await?;
        let expect = match self.status_of(Some(first)) {
            Some(s) => Expect::of(&[s]),
            None => Expect::of(P::IdempotencyReplay.expected()),
        };
        let replay =
            self.provoke_one(P::IdempotencyReplay, op.as_ref(), req, expect, Some(first), on_event).await?;
        let offered = routes.declares_idempotency == Some(true)
            || self.answer(Some(replay)).is_some_and(|r| {
                // Marked as a replay, or the first answer's bytes (its request id in the
                // body) under a request id of its own in the header.
                r.replayed()
                    || self.answer(Some(first)).is_some_and(|f| {
                        f.body == r.body
                            && f.body_request_id.is_some()
                            && r.header_request_id().is_some_and(|h| Some(h) != r.body_request_id.as_deref())
                    })
            });
        self.idempotency_offered = offered;
        if let (Some(ra), Some(fa)) = (self.answer(Some(replay)), self.answer(Some(first))) {
            let result = if offered || required {
                check::replay(ra, fa)
            } else {
                CheckResult::skip(Check::IdempotentReplay, "not offered: the replay was answered afresh")
            };
            self.done[replay].0.checks.push(result);
        }
        if offered || required {
            let req = post(self, 2);
            self.provoke_plain(P::IdempotencyReuse, op.as_ref(), req, on_event).await?;
        } else {
            self.skip(
                P::IdempotencyReuse,
                op.as_ref(),
                "POST",
                create,
                "not offered: the replay was answered afresh",
                on_event,
            );
        }
        Ok(())
    }

    /// Requests to the collection until a 429, within the budget.
    async fn burst(&mut self, coll: &str, on_event: &mut impl FnMut(Event<'_>)) -> Result<(), Error> {
        let p = Provocation::RateLimit;
        if let Some(why) = self.stopped.clone() {
            self.skip(p, None, "GET", coll, &why, on_event);
            return Ok(());
        }
        let remaining_quota = self.done.iter().rev().filter_map(|(_, a)| a.as_ref()).find_map(rate_remaining);
        let budget = self.t.remaining();
        if let Some(r) = remaining_quota
            && r + 1 > budget
        {
            let why = format!(
                "the rate limit admits {r} more requests and --max-requests leaves {budget}: \
                 raise --max-requests to at least {}",
                self.t.sent() + r + 1
            );
            self.skip(p, None, "GET", coll, &why, on_event);
            return Ok(());
        }
        self.note(format!("burst: up to {budget} requests to GET {coll} until a 429"), on_event);
        let req = self.authed(Request::new(Method::GET, coll));
        let mut sent = 0;
        loop {
            if self.t.remaining() == 0 {
                let why =
                    format!("no 429 after {sent} requests: the limit is above what --max-requests allows");
                self.skip(p, None, "GET", coll, &why, on_event);
                return Ok(());
            }
            // Straight to the transport: here a 429 is the answer sought, not a reason to wait.
            match self.t.send(&req).await {
                // A 429, or an error instead of one: either is the provocation's answer.
                Ok(a) if a.status >= 400 => {
                    self.observe(&req, &a);
                    self.record(p, None, &req, Ok(a), &Expect::of(p.expected()), None, on_event)?;
                    return Ok(());
                }
                Ok(a) => {
                    self.observe(&req, &a);
                    sent += 1;
                }
                Err(SendError::Unreachable(e)) => return Err(e),
                Err(e @ (SendError::Budget | SendError::Failed(_) | SendError::RateLimited(_))) => {
                    self.record(p, None, &req, Err(e), &Expect::of(p.expected()), None, on_event)?;
                    return Ok(());
                }
            }
        }
    }

    fn finish(mut self, config: &Config, routes: Routes) -> Report {
        let expected = self.catalog.as_ref().map(|c| Envelope::Dialect(c.dialect()));
        let errors: Vec<Envelope> = self
            .done
            .iter()
            .filter_map(|(_, a)| a.as_ref())
            .filter(|a| a.is_error())
            .map(|a| a.parsed.envelope)
            .collect();
        let dominant = expected.or_else(|| dominant(&errors));
        for (ex, answer) in &mut self.done {
            let Some(a) = answer.as_ref().filter(|a| a.is_error()) else { continue };
            if ex.checks.iter().any(|c| c.check == Check::Envelope) {
                continue;
            }
            let result = envelope_check(a.parsed.envelope, dominant, expected.is_some(), &errors);
            // Keep the report's order: status, envelope, then the rest.
            let at = usize::from(!ex.checks.is_empty());
            ex.checks.insert(at, result);
        }

        // Features: what the API does not offer is neither passed nor failed, unless required.
        let required = |f: Feature| config.expect.contains(&f);
        let mut extra = Vec::new();
        let mut features = Vec::new();
        let request_ids = self.request_id_seen.clone();
        // Not offered and not required: the feature line says so once, instead of a check
        // per answer.
        if request_ids.is_none() && !required(Feature::RequestIds) {
            for (ex, _) in &mut self.done {
                ex.checks.retain(|c| c.check != Check::RequestId);
            }
        }
        features.push(FeatureStatus {
            feature: Feature::RequestIds,
            offered: request_ids.is_some(),
            required: required(Feature::RequestIds),
            evidence: request_ids.clone().unwrap_or_else(|| "no answer carries one".into()),
        });
        if request_ids.is_none()
            && required(Feature::RequestIds)
            && !self.done.iter().any(|(e, _)| e.checks.iter().any(|c| c.check == Check::RequestId))
        {
            extra.push((Check::RequestId, "request ids are required by --expect and not offered".to_owned()));
        }

        let replay = self.done.iter().find(|(e, _)| e.provocation == Provocation::IdempotencyReplay);
        let idem_offered = self.idempotency_offered;
        let idem_evidence = match (routes.declares_idempotency, replay.and_then(|(_, a)| a.as_ref())) {
            (Some(true), _) => "the document declares Idempotency-Key".to_owned(),
            (Some(false), None) => "the document declares no Idempotency-Key header".to_owned(),
            (_, Some(a)) if a.replayed() => "a replay came back marked Idempotent-Replayed".to_owned(),
            (_, Some(_)) if idem_offered => "a replay came back byte for byte".to_owned(),
            (_, Some(_)) => "a replay was answered afresh".to_owned(),
            (None, None) => "not tried".to_owned(),
        };
        if !idem_offered && required(Feature::IdempotencyKeys) {
            extra.push((
                Check::IdempotentReplay,
                "idempotency keys are required by --expect and not offered".to_owned(),
            ));
        }
        features.push(FeatureStatus {
            feature: Feature::IdempotencyKeys,
            offered: idem_offered,
            required: required(Feature::IdempotencyKeys),
            evidence: idem_evidence,
        });

        let rate = self.rate_headers_seen.clone();
        if rate.is_none() && required(Feature::RateLimitHeaders) {
            extra.push((
                Check::RateLimitHeaders,
                "rate-limit headers are required by --expect and no answer carries one".to_owned(),
            ));
        }
        features.push(FeatureStatus {
            feature: Feature::RateLimitHeaders,
            offered: rate.is_some(),
            required: required(Feature::RateLimitHeaders),
            evidence: rate.map_or_else(|| "no answer carries one".to_owned(), |h| format!("{h} seen")),
        });

        // Coverage: an operation is reached when one of its provocations got an answer.
        let mut coverage = Coverage { declared: routes.operations.len(), ..Coverage::default() };
        for op in &routes.operations {
            let name = op.name();
            let mine: Vec<&Exchange> = self
                .done
                .iter()
                .map(|(e, _)| e)
                .filter(|e| e.operation.as_deref() == Some(name.as_str()))
                .collect();
            if mine.iter().any(|e| e.answered()) {
                coverage.reached += 1;
            } else {
                let why = mine.iter().find_map(|e| e.note.as_deref()).unwrap_or("no provocation applies");
                coverage.unreached.push(format!("{name}: {why}"));
            }
        }

        let mut exchanges = Vec::with_capacity(self.done.len());
        for (mut ex, answer) in self.done {
            if let Some(a) = answer.as_ref().filter(|_| !ex.conforms()) {
                ex.body_excerpt = Some(excerpt(&a.body));
            }
            exchanges.push(ex);
        }
        let unsent = exchanges.iter().filter(|e| e.note.as_deref() == Some(report::BUDGET_NOTE)).count();
        if unsent > 0 {
            self.notes.push(format!(
                "--max-requests {} left {unsent} provocations unsent; about --max-requests {} sends them all",
                config.max_requests,
                config.max_requests + unsent
            ));
        }
        let findings = report::group(&exchanges, extra);
        let conforms = findings.is_empty();
        Report {
            target: config.url.clone(),
            routes,
            expected_envelope: expected.map(|e| check::envelope_name(e).to_owned()),
            envelope: dominant.map(|e| check::envelope_name(e).to_owned()),
            notes: self.notes,
            requests: self.t.sent(),
            max_requests: self.t.max(),
            features,
            coverage,
            findings,
            stopped: self.stopped,
            exchanges,
            conforms,
        }
    }
}

/// `X-RateLimit-Limit` for `x-ratelimit-limit`.
fn canonical_rate_header(h: &str) -> &'static str {
    match h {
        "ratelimit" => "RateLimit",
        "ratelimit-policy" => "RateLimit-Policy",
        "x-ratelimit-limit" => "X-RateLimit-Limit",
        "x-ratelimit-remaining" => "X-RateLimit-Remaining",
        _ => "X-RateLimit-Reset",
    }
}

/// The envelope check of one answer: `expected` is the profile's dialect (`from_profile`) or
/// the one most `errors` are in.
fn envelope_check(
    seen: Envelope,
    expected: Option<Envelope>,
    from_profile: bool,
    errors: &[Envelope],
) -> CheckResult {
    let name = check::envelope_name;
    match expected {
        _ if !check::is_envelope(seen) => CheckResult::fail(
            Check::Envelope,
            format!("no error envelope: the body is {}", describe_non_envelope(seen)),
        ),
        Some(d) if check::envelope_fits(d, seen) => CheckResult::pass(Check::Envelope, name(seen)),
        Some(d) if from_profile => CheckResult::fail(
            Check::Envelope,
            format!("{}, but the profile's dialect is {}", name(seen), name(d)),
        ),
        Some(d) => {
            let n = errors.iter().filter(|e| check::envelope_fits(d, **e)).count();
            let total = errors.len();
            CheckResult::fail(
                Check::Envelope,
                format!("{} here, {} in {n} of {total} errors", name(seen), name(d)),
            )
        }
        None => CheckResult::fail(Check::Envelope, "no error envelope in any answer"),
    }
}

fn origin_of(u: &Url) -> String {
    u.origin().ascii_serialization()
}

/// The envelope most errors are in: problem details without a code count for `arize` (which
/// leaves its code out of 5xx); ties go to the one seen first.
fn dominant(errors: &[Envelope]) -> Option<Envelope> {
    let envelopes: Vec<Envelope> = errors.iter().copied().filter(|e| check::is_envelope(*e)).collect();
    let mut counts: HashMap<Envelope, usize> = HashMap::new();
    let mut order = Vec::new();
    for e in &envelopes {
        if !counts.contains_key(e) {
            order.push(*e);
        }
        *counts.entry(*e).or_default() += 1;
    }
    let fit = |d: Envelope| envelopes.iter().filter(|e| check::envelope_fits(d, **e)).count();
    let mut best: Option<(usize, Envelope)> = None;
    for e in order {
        let n = fit(e);
        // Between equals, a dialect beats bare problem details.
        if best.is_none_or(|(b, be)| n > b || (n == b && be == Envelope::Problem && e != Envelope::Problem)) {
            best = Some((n, e));
        }
    }
    best.map(|(_, e)| e)
}

fn describe_non_envelope(e: Envelope) -> &'static str {
    match e {
        Envelope::Text => "not JSON",
        Envelope::Empty => "empty",
        Envelope::OtherJson => "JSON of no error envelope",
        _ => "of no error envelope",
    }
}

/// What the rate limit says is left: `X-RateLimit-Remaining`, else the IETF `RateLimit`
/// field's `r`.
fn rate_remaining(a: &Answer) -> Option<usize> {
    if let Some(v) = a.header("x-ratelimit-remaining").and_then(|v| v.trim().parse().ok()) {
        return Some(v);
    }
    let field = a.header("ratelimit")?;
    field.split(';').find_map(|p| p.trim().strip_prefix("r=")).and_then(|r| r.trim().parse().ok())
}

/// A body over [`OVERSIZE_BYTES`]: the invalid payload padded with one long string, so that an
/// API with a higher limit still refuses it.
fn oversize_body(wrong: &Value) -> Vec<u8> {
    let padding = "x".repeat(OVERSIZE_BYTES);
    let v = match wrong {
        Value::Object(m) => {
            let mut m = m.clone();
            m.insert("rebuff_probe_padding".into(), Value::String(padding));
            Value::Object(m)
        }
        _ => Value::String(format!("rebuff-probe {padding}")),
    };
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The start of a body for a report: up to 300 characters, control characters replaced.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(1200)]);
    let mut s: String =
        text.chars().take(300).map(|c| if c.is_control() && c != '\n' { ' ' } else { c }).collect();
    if text.chars().count() > 300 || body.len() > 1200 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebuff_core::Dialect;

    #[test]
    fn the_dominant_envelope_is_the_most_common() {
        let r = Envelope::Dialect(Dialect::Rebuff);
        let m = Envelope::Dialect(Dialect::Mlops);
        assert_eq!(dominant(&[r, m, r, Envelope::Text, Envelope::Text, Envelope::Text]), Some(r));
        assert_eq!(dominant(&[m, r]), Some(m));
        let a = Envelope::Dialect(Dialect::Arize);
        assert_eq!(dominant(&[Envelope::Problem, a]), Some(a));
        assert_eq!(dominant(&[Envelope::Text]), None);
    }

    #[test]
    fn debug_output_hides_the_key() {
        let mut c = Config::new("http://127.0.0.1:1");
        c.key = Some("rb_test_secret".into());
        let shown = format!("{c:?}");
        assert!(!shown.contains("secret") && shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn oversize_bodies_are_oversize_and_invalid() {
        let b = oversize_body(&serde_json::json!({"name": 1}));
        assert!(b.len() > OVERSIZE_BYTES);
        let v: Value = serde_json::from_slice(&b).unwrap_or_default();
        assert_eq!(v["name"], 1);
    }
}
