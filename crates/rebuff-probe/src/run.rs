//! Running a probe: the routes, the provocations in order, the checks across answers.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, Method};
use rebuff_core::{Catalog, Envelope};
use reqwest::Url;
use serde_json::Value;

use crate::check::{self, Answer, Check, CheckResult, Expect, Outcome};
use crate::error::Error;
use crate::plan::{self, Routes};
use crate::provocation::Provocation;
use crate::report::{Exchange, Report};
use crate::transport::{Request, SendError, Transport, same_origin};

/// The malformed JSON sent: cut off in the middle of an array.
const MALFORMED_JSON: &str = "{\"rebuff_probe\": [1, 2,";

/// The foreign id when the collection has no id to imitate: a UUID, the commonest shape.
const FALLBACK_ID: &str = "5b0e7c1a-9d3f-4e2b-8a6c-1f4d7e9b2c30";

/// How big the oversize body is: over the 1 MiB and 2 MB defaults of common servers
/// (nginx, axum) so that a default limit answers 413.
pub const OVERSIZE_BYTES: usize = 2 * 1024 * 1024 + 1024;

/// What to probe and how. Messages about it name the `rebuff probe` flags (`--key`, ...).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The API's base URL (`http://127.0.0.1:8080`, or a collection such as
    /// `http://host/v1/things` when there is no OpenAPI document).
    pub url: String,
    /// An API key, sent as `Authorization: Bearer KEY`. Without one, provocations behind
    /// authentication are skipped.
    pub key: Option<String>,
    /// An OpenAPI document: a local file, or a URL on the target's own host.
    pub openapi: Option<String>,
    /// A built-in profile (`rebuff`, `arize`, ...): every error must be in its dialect.
    /// Without one, every error must be in the dialect most errors are in.
    pub profile: Option<String>,
    /// The most requests to send, everything included.
    pub max_requests: usize,
    /// How long one request may take.
    pub timeout: Duration,
    /// Whether to send requests past the rate limit to see a 429 (bounded by
    /// `max_requests`).
    pub burst: bool,
}

impl Config {
    /// Defaults for a URL: no key, no document, at most 60 requests, 10 s each, no burst.
    pub fn new(url: impl Into<String>) -> Self {
        Config {
            url: url.into(),
            key: None,
            openapi: None,
            profile: None,
            max_requests: 60,
            timeout: Duration::from_secs(10),
            burst: false,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("url", &self.url)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("openapi", &self.openapi)
            .field("profile", &self.profile)
            .field("max_requests", &self.max_requests)
            .field("timeout", &self.timeout)
            .field("burst", &self.burst)
            .finish()
    }
}

/// What happens while a probe runs, for progress output.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Something the probe assumed or could not do.
    Note(&'a str),
    /// A provocation was answered (or skipped); its own checks are made, the checks across
    /// answers come at the end.
    Exchange {
        /// Requests sent so far.
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
/// [`ErrorKind::Usage`](crate::ErrorKind::Usage) for a URL or document the probe cannot use
/// (including an OpenAPI URL on another host); [`ErrorKind::Unreachable`](crate::ErrorKind::Unreachable)
/// when the first request finds nobody there.
pub async fn run_with(config: &Config, mut on_event: impl FnMut(Event<'_>)) -> Result<Report, Error> {
    let base =
        Url::parse(&config.url).map_err(|e| Error::usage(format!("`{}` is not a URL: {e}", config.url)))?;
    match base.scheme() {
        "http" => {}
        "https" => {
            return Err(Error::usage(format!(
                "`{}`: this build of the probe speaks plain HTTP only (no TLS); probe an http:// \
                 instance (local or staging) of the API",
                config.url
            )));
        }
        other => return Err(Error::usage(format!("`{}`: `{other}` is not http", config.url))),
    }
    if base.host_str().is_none_or(str::is_empty) {
        return Err(Error::usage(format!("`{}` has no host", config.url)));
    }
    if config.max_requests == 0 {
        return Err(Error::usage("--max-requests must be at least 1"));
    }
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
    let transport = Transport::new(origin, config.max_requests, config.timeout, catalog.clone())?;
    let mut run = Run {
        t: transport,
        key: config.key.clone(),
        catalog,
        notes: Vec::new(),
        done: Vec::new(),
        nonce: nonce(),
    };
    let routes = run.routes(config, &base, local_doc, &mut on_event).await?;
    if routes.source != "guessed" {
        let text = format!(
            "routes ({}): GET {}, GET {}, POST {}",
            routes.source, routes.collection, routes.item, routes.create
        );
        on_event(Event::Note(&text));
    }
    run.provoke(&routes, config.burst, &mut on_event).await?;
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
    h.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

struct Run {
    t: Transport,
    key: Option<String>,
    catalog: Option<Catalog>,
    notes: Vec<String>,
    done: Vec<(Exchange, Option<Answer>)>,
    nonce: String,
}

impl Run {
    fn note(&mut self, text: String, on_event: &mut impl FnMut(Event<'_>)) {
        on_event(Event::Note(&text));
        self.notes.push(text);
    }

    fn authed(&self, req: Request) -> Request {
        match &self.key {
            Some(k) => req.header(AUTHORIZATION, &format!("Bearer {k}")),
            None => req,
        }
    }

    /// Sends a request that is no provocation (a document, a listing). `Ok(None)` when it got
    /// no answer or the budget is spent.
    async fn fetch(&mut self, req: &Request) -> Result<Option<Answer>, Error> {
        match self.t.send(req).await {
            Ok(a) => Ok(Some(a)),
            Err(SendError::Unreachable(e)) => Err(e),
            Err(SendError::Budget | SendError::Failed(_)) => Ok(None),
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
                let answer = match self.t.send(&req).await {
                    Ok(a) => a,
                    Err(SendError::Unreachable(e)) => return Err(e),
                    Err(SendError::Budget) => {
                        return Err(Error::usage("--max-requests leaves no request to probe with"));
                    }
                    Err(SendError::Failed(why)) => {
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
                match self.fetch(&req).await? {
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
        req: Request,
        expect: Expect,
        first: Option<usize>,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<usize, Error> {
        let result = self.t.send(&req).await;
        self.record(p, &req, result, &expect, first, on_event)
    }

    /// Sends one provocation that expects what [`Provocation::expected`] says.
    async fn provoke_plain(
        &mut self,
        p: Provocation,
        req: Request,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<usize, Error> {
        self.provoke_one(p, req, Expect::of(p.expected()), None, on_event).await
    }

    /// Records a provocation's answer (or why there is none) with its own checks.
    fn record(
        &mut self,
        p: Provocation,
        req: &Request,
        result: Result<Answer, SendError>,
        expect: &Expect,
        first: Option<usize>,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<usize, Error> {
        let mut ex = Exchange::new(p, req.method.as_str(), &req.path);
        let answer = match result {
            Ok(a) => Some(a),
            Err(SendError::Unreachable(e)) => return Err(e),
            Err(SendError::Budget) => {
                ex.note = Some("not sent: --max-requests reached".into());
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
        on_event(Event::Exchange { sent: self.t.sent(), max: self.t.max(), exchange: &ex });
        self.done.push((ex, answer));
        Ok(self.done.len() - 1)
    }

    fn skip(
        &mut self,
        p: Provocation,
        method: &str,
        path: &str,
        why: &str,
        on_event: &mut impl FnMut(Event<'_>),
    ) {
        let mut ex = Exchange::new(p, method, path);
        ex.note = Some(why.to_owned());
        on_event(Event::Exchange { sent: self.t.sent(), max: self.t.max(), exchange: &ex });
        self.done.push((ex, None));
    }

    fn status_of(&self, i: Option<usize>) -> Option<u16> {
        i.and_then(|i| self.done[i].1.as_ref()).map(|a| a.status)
    }

    fn answer(&self, i: Option<usize>) -> Option<&Answer> {
        i.and_then(|i| self.done[i].1.as_ref())
    }

    async fn provoke(
        &mut self,
        routes: &Routes,
        burst: bool,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<(), Error> {
        use Provocation as P;
        let coll = routes.collection.as_str();
        let create = routes.create.as_str();
        let get = |this: &Self, path: &str| this.authed(Request::new(Method::GET, path));
        let bytes = |v: &Value| serde_json::to_vec(v).unwrap_or_default();
        let post = |this: &Self, ct: Option<&str>, body: Vec<u8>| {
            let r = this.authed(Request::new(Method::POST, create)).body(body);
            match ct {
                Some(ct) => r.header(CONTENT_TYPE, ct),
                None => r,
            }
        };

        // Authentication: the first request tells whether the target is there at all.
        let none = self.provoke_plain(P::NoCredentials, Request::new(Method::GET, coll), on_event).await?;
        let malformed = Request::new(Method::GET, coll).header(AUTHORIZATION, "Bearer !!not-a-key!!");
        self.provoke_plain(P::MalformedCredentials, malformed, on_event).await?;
        let unknown_key = self
            .key
            .as_deref()
            .and_then(plan::foreign_like)
            .unwrap_or_else(|| "rebuff_probe_unknown_key_0000000000000000".to_owned());
        let unknown = Request::new(Method::GET, coll).header(AUTHORIZATION, &format!("Bearer {unknown_key}"));
        self.provoke_plain(P::UnknownCredentials, unknown, on_event).await?;
        let has_key = self.key.is_some();
        let blocked = match self.status_of(Some(none)) {
            Some(s @ (401 | 403)) if !has_key => {
                Some(format!("needs --key: {coll} answers {s} without credentials"))
            }
            _ => None,
        };

        // The listing: a key the API refuses would make every other answer a 401, and an
        // item's id is worth imitating for the foreign id.
        let mut sample = None;
        if blocked.is_none() {
            match self.fetch(&get(self, coll)).await? {
                Some(a) if has_key && matches!(a.status, 401 | 403) => {
                    return Err(Error::usage(format!(
                        "the API refuses --key: GET {coll} answered {} with it",
                        a.status
                    )));
                }
                Some(a) if (200..300).contains(&a.status) => {
                    sample = a.json.as_ref().and_then(plan::first_id)
                }
                _ => {}
            }
        }

        // Routing. Without a key, an API that authenticates before it routes answers 401 first.
        let or_401 = |p: Provocation| {
            let mut e = Expect::of(p.expected());
            if !has_key {
                e.statuses.push(401);
            }
            e
        };
        let req = get(self, &routes.unknown_route());
        let unknown_route =
            self.provoke_one(P::UnknownRoute, req, or_401(P::UnknownRoute), None, on_event).await?;
        let req = self.authed(Request::new(routes.wrong_method(), coll));
        self.provoke_one(P::WrongMethod, req, or_401(P::WrongMethod), None, on_event).await?;

        // Everything else needs the caller to get past authentication.
        if let Some(why) = &blocked {
            for (p, method, path) in [
                (P::MalformedJson, "POST", create),
                (P::WrongBodyType, "POST", create),
                (P::MissingContentType, "POST", create),
                (P::WrongContentType, "POST", create),
                (P::OversizeBody, "POST", create),
                (P::InvalidId, "GET", routes.item.as_str()),
                (P::ForeignId, "GET", routes.item.as_str()),
                (P::IdempotencyFirst, "POST", create),
                (P::IdempotencyReplay, "POST", create),
                (P::IdempotencyReuse, "POST", create),
                (P::RateLimit, "GET", coll),
            ] {
                let why = if p == P::RateLimit && !burst { "only with --burst" } else { why.as_str() };
                self.skip(p, method, path, why, on_event);
            }
            return Ok(());
        }

        // Bodies. Every payload is refused whatever the Content-Type: wrong types throughout.
        let json = Some("application/json");
        let wrong = routes.wrong_body(0);
        for (p, ct, body) in [
            (P::MalformedJson, json, MALFORMED_JSON.as_bytes().to_vec()),
            (P::WrongBodyType, json, bytes(&wrong)),
            (P::MissingContentType, None, bytes(&wrong)),
            (P::WrongContentType, Some("text/plain"), bytes(&wrong)),
        ] {
            let req = post(self, ct, body);
            self.provoke_plain(p, req, on_event).await?;
        }
        let mut expect = Expect::of(P::OversizeBody.expected());
        for s in [400, 415, 422] {
            expect
                .inconclusive
                .push((s, "the API read the whole 2 MiB body: its limit may be higher".into()));
        }
        // A server that refuses a body without reading it closes the connection after its
        // answer; a pooled connection would then fail the next request.
        let req = post(self, json, oversize_body(&wrong)).header(http::header::CONNECTION, "close");
        self.provoke_one(P::OversizeBody, req, expect, None, on_event).await?;

        // Ids.
        let req = get(self, &routes.item_path("!not-an-id!"));
        let invalid = self.provoke_plain(P::InvalidId, req, on_event).await?;
        let (id, expect) = match sample.as_deref().and_then(plan::foreign_like) {
            Some(id) => (id, Expect::of(P::ForeignId.expected())),
            None => {
                if self.t.remaining() > 0 {
                    let text = format!(
                        "GET {coll} gave no item id to imitate: the foreign id is a UUID, and a 400 for it \
                         says nothing"
                    );
                    self.note(text, on_event);
                }
                let mut e = Expect::of(P::ForeignId.expected());
                let why = "the API does not take a UUID as an id, and there was no id to imitate";
                e.inconclusive.extend([(400, why.to_owned()), (422, why.to_owned())]);
                (FALLBACK_ID.to_owned(), e)
            }
        };
        let req = get(self, &routes.item_path(&id));
        let foreign = self.provoke_one(P::ForeignId, req, expect, None, on_event).await?;
        let shape = match self.answer(Some(foreign)).filter(|a| a.status == 404) {
            None => CheckResult::skip(Check::NotFoundShape, "the foreign id was not answered 404"),
            Some(fa) => {
                let other =
                    [(unknown_route, "the unknown route"), (invalid, "the invalid id")].into_iter().find_map(
                        |(i, name)| self.answer(Some(i)).filter(|a| a.status == 404).map(|a| (a, name)),
                    );
                match other {
                    Some((oa, name)) => check::not_found_shape(fa, oa, name),
                    None => CheckResult::skip(Check::NotFoundShape, "no other 404 to compare with"),
                }
            }
        };
        self.done[foreign].0.checks.push(shape);

        // Idempotency keys: a fresh key, the same request again, the key with another payload.
        let idem = HeaderName::from_static("idempotency-key");
        let key = format!("rebuff-probe-{}", self.nonce);
        let req = post(self, json, bytes(&routes.wrong_body(1))).header(idem.clone(), &key);
        let first = self.provoke_plain(P::IdempotencyFirst, req.clone(), on_event).await?;
        let expect = match self.status_of(Some(first)) {
            Some(s) => Expect::of(&[s]),
            None => Expect::of(P::IdempotencyReplay.expected()),
        };
        let replay = self.provoke_one(P::IdempotencyReplay, req, expect, Some(first), on_event).await?;
        if let (Some(ra), Some(fa)) = (self.answer(Some(replay)), self.answer(Some(first))) {
            let result = check::replay(ra, fa);
            self.done[replay].0.checks.push(result);
        }
        let req = post(self, json, bytes(&routes.wrong_body(2))).header(idem, &key);
        self.provoke_plain(P::IdempotencyReuse, req, on_event).await?;

        // Rate limit, last: after it the caller is limited for a while.
        if burst {
            self.burst(coll, on_event).await
        } else {
            self.skip(P::RateLimit, "GET", coll, "only with --burst", on_event);
            Ok(())
        }
    }

    /// Requests to the collection until a 429, within the budget.
    async fn burst(&mut self, coll: &str, on_event: &mut impl FnMut(Event<'_>)) -> Result<(), Error> {
        let p = Provocation::RateLimit;
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
            self.skip(p, "GET", coll, &why, on_event);
            return Ok(());
        }
        self.note(format!("burst: up to {budget} requests to GET {coll} until a 429"), on_event);
        let req = self.authed(Request::new(Method::GET, coll));
        let mut sent = 0;
        loop {
            if self.t.remaining() == 0 {
                let why =
                    format!("no 429 after {sent} requests: the limit is above what --max-requests allows");
                self.skip(p, "GET", coll, &why, on_event);
                return Ok(());
            }
            match self.t.send(&req).await {
                // A 429, or an error instead of one: either is the provocation's answer.
                Ok(a) if a.status >= 400 => {
                    self.record(p, &req, Ok(a), &Expect::of(p.expected()), None, on_event)?;
                    return Ok(());
                }
                Ok(_) => sent += 1,
                Err(SendError::Unreachable(e)) => return Err(e),
                Err(e @ (SendError::Budget | SendError::Failed(_))) => {
                    self.record(p, &req, Err(e), &Expect::of(p.expected()), None, on_event)?;
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
        let mut exchanges = Vec::with_capacity(self.done.len());
        for (mut ex, answer) in self.done {
            if let Some(a) = answer.as_ref().filter(|_| !ex.conforms()) {
                ex.body_excerpt = Some(excerpt(&a.body));
            }
            exchanges.push(ex);
        }
        let conforms = exchanges.iter().all(|e| e.checks.iter().all(|c| c.outcome != Outcome::Fail));
        Report {
            target: config.url.clone(),
            routes,
            expected_envelope: expected.map(|e| check::envelope_name(e).to_owned()),
            envelope: dominant.map(|e| check::envelope_name(e).to_owned()),
            notes: self.notes,
            requests: self.t.sent(),
            max_requests: self.t.max(),
            exchanges,
            conforms,
        }
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
