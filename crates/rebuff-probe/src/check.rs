//! The checks a probe makes on each answer, and across answers.

use std::collections::BTreeSet;
use std::fmt;

use http::HeaderMap;
use http::header::{ALLOW, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use rebuff_core::dialect::X_REQUEST_ID;
use rebuff_core::{Catalog, Dialect, Envelope, ParsedError};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::leak;

/// One thing a probe checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Check {
    /// The status is right for the provocation.
    Status,
    /// The body is the same error envelope (dialect) as every other error's.
    Envelope,
    /// The `Content-Type` matches the body: `application/problem+json` for RFC 9457 problem
    /// details, a JSON type for other JSON, not JSON for what is not.
    MediaType,
    /// A `status` member in the body equals the HTTP status.
    BodyStatus,
    /// A request id is in the body or the `X-Request-Id` header, the same in both.
    RequestId,
    /// A 401 carries `WWW-Authenticate`.
    WwwAuthenticate,
    /// A 405 carries `Allow`, naming the methods the path has (the document's, or what the
    /// probe saw): none missing, none extra (`HEAD` with `GET` and `OPTIONS` are not extra).
    Allow,
    /// A 429 carries `Retry-After`.
    RetryAfter,
    /// No stack trace, SQL, file path or framework banner in the body.
    NoLeak,
    /// A 404 for a well-formed id that is not the caller's has the members and dialect of any
    /// other 404, so that it does not tell what exists.
    NotFoundShape,
    /// A request replayed with the same `Idempotency-Key` gets the first answer again.
    IdempotentReplay,
    /// Answers carry rate-limit headers (`RateLimit`/`RateLimit-Policy` or `X-RateLimit-*`);
    /// checked only when `--expect rate-limit` requires them.
    RateLimitHeaders,
}

impl Check {
    /// Every check, in report order.
    pub const ALL: [Check; 12] = [
        Check::Status,
        Check::Envelope,
        Check::MediaType,
        Check::BodyStatus,
        Check::RequestId,
        Check::WwwAuthenticate,
        Check::Allow,
        Check::RetryAfter,
        Check::NoLeak,
        Check::NotFoundShape,
        Check::IdempotentReplay,
        Check::RateLimitHeaders,
    ];

    /// The check's stable name, as reports show it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Check::Status => "status",
            Check::Envelope => "envelope",
            Check::MediaType => "media-type",
            Check::BodyStatus => "body-status",
            Check::RequestId => "request-id",
            Check::WwwAuthenticate => "www-authenticate",
            Check::Allow => "allow",
            Check::RetryAfter => "retry-after",
            Check::NoLeak => "no-leak",
            Check::NotFoundShape => "not-found-shape",
            Check::IdempotentReplay => "idempotent-replay",
            Check::RateLimitHeaders => "rate-limit-headers",
        }
    }

    /// Parses a name made by [`Check::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Check {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Outcome {
    /// The answer conforms.
    Pass,
    /// The answer does not conform.
    Fail,
    /// The check could not be made; the message says why.
    Skip,
}

/// One check on one answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CheckResult {
    /// What was checked.
    pub check: Check,
    /// How it came out.
    pub outcome: Outcome,
    /// What was seen (for a failure, what is wrong; for a skip, why).
    pub message: String,
}

impl CheckResult {
    pub(crate) fn pass(check: Check, message: impl Into<String>) -> Self {
        CheckResult { check, outcome: Outcome::Pass, message: message.into() }
    }

    pub(crate) fn fail(check: Check, message: impl Into<String>) -> Self {
        CheckResult { check, outcome: Outcome::Fail, message: message.into() }
    }

    pub(crate) fn skip(check: Check, message: impl Into<String>) -> Self {
        CheckResult { check, outcome: Outcome::Skip, message: message.into() }
    }
}

/// An answer, read and parsed once for every check.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
    /// The body as JSON, when it is JSON.
    pub(crate) json: Option<Value>,
    /// The body through rebuff's universal parser.
    pub(crate) parsed: ParsedError,
    /// The request id the body itself carries (not the header's).
    pub(crate) body_request_id: Option<String>,
}

impl Answer {
    pub(crate) fn new(status: u16, headers: HeaderMap, body: Vec<u8>, catalog: Option<&Catalog>) -> Self {
        let json = serde_json::from_slice::<Value>(body.trim_ascii()).ok();
        let parse = |headers: &HeaderMap| match catalog {
            Some(c) => rebuff_core::parse_for(c, status, headers, &body).0,
            None => rebuff_core::parse(status, headers, &body),
        };
        let parsed = parse(&headers);
        let body_request_id = if headers.contains_key(X_REQUEST_ID) {
            let mut without = headers.clone();
            without.remove(X_REQUEST_ID);
            parse(&without).request_id
        } else {
            parsed.request_id.clone()
        };
        Answer { status, headers, body, json, parsed, body_request_id }
    }

    pub(crate) fn is_error(&self) -> bool {
        self.status >= 400
    }

    pub(crate) fn header(&self, name: impl http::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The media type without parameters, in lower case.
    pub(crate) fn media_type(&self) -> Option<String> {
        self.header(CONTENT_TYPE).map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
    }

    /// The header's request id: `X-Request-Id`, else `Request-Id`.
    pub(crate) fn header_request_id(&self) -> Option<&str> {
        self.header(X_REQUEST_ID).or_else(|| self.header("request-id")).filter(|s| !s.trim().is_empty())
    }

    pub(crate) fn replayed(&self) -> bool {
        self.header("idempotent-replayed").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }

    /// The envelope's name for reports.
    pub(crate) fn envelope_name(&self) -> &'static str {
        envelope_name(self.parsed.envelope)
    }

    /// The members of the body: top-level names, and one level into object members
    /// (`error.code`), sorted.
    pub(crate) fn members(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        if let Some(Value::Object(map)) = &self.json {
            for (k, v) in map {
                out.insert(k.clone());
                if let Value::Object(inner) = v {
                    out.extend(inner.keys().map(|i| format!("{k}.{i}")));
                }
            }
        }
        out
    }
}

/// A name for an envelope: the dialect's name, `rfc9457` for problem details without a code,
/// and `other-json`, `text` or `empty` for what is no error envelope.
pub(crate) fn envelope_name(e: Envelope) -> &'static str {
    match e {
        Envelope::Dialect(d) => d.as_str(),
        Envelope::Problem => "rfc9457",
        Envelope::OtherJson => "other-json",
        Envelope::Text => "text",
        Envelope::Empty => "empty",
    }
}

/// Whether an envelope is one of the error envelopes (not text, other JSON or nothing).
pub(crate) fn is_envelope(e: Envelope) -> bool {
    matches!(e, Envelope::Dialect(_) | Envelope::Problem)
}

/// Whether an answer in `seen` fits an API whose errors are in `expected`. Problem details
/// without a code fit `arize`, which leaves `error_code` out of 5xx answers.
pub(crate) fn envelope_fits(expected: Envelope, seen: Envelope) -> bool {
    seen == expected
        || (seen == Envelope::Problem && expected == Envelope::Dialect(Dialect::Arize))
        || (expected == Envelope::Problem && seen == Envelope::Dialect(Dialect::Arize))
}

/// The statuses an answer may have.
#[derive(Debug, Clone)]
pub(crate) struct Expect {
    /// Statuses that conform, the expected one first.
    pub(crate) statuses: Vec<u16>,
    /// Statuses that say the provocation did not take, so the check cannot tell: with why.
    pub(crate) inconclusive: Vec<(u16, String)>,
    /// The methods a 405's `Allow` must name, upper case; `None`: any `Allow` will do.
    pub(crate) allow: Option<Vec<String>>,
}

impl Expect {
    pub(crate) fn of(statuses: &[u16]) -> Self {
        Expect { statuses: statuses.to_vec(), inconclusive: Vec::new(), allow: None }
    }

    fn describe(&self) -> String {
        let mut s = String::new();
        for (i, st) in self.statuses.iter().enumerate() {
            match i {
                0 => s.push_str(&st.to_string()),
                1 => s.push_str(&format!(" (or {st}")),
                _ => s.push_str(&format!(", {st}")),
            }
        }
        if self.statuses.len() > 1 {
            s.push(')');
        }
        s
    }
}

/// The checks that need only this answer. `first` is the answer a replay replays.
pub(crate) fn per_answer(a: &Answer, expect: &Expect, first: Option<&Answer>) -> Vec<CheckResult> {
    let mut out = vec![status(a, expect)];
    if a.is_error() {
        out.push(media_type(a));
        out.extend(body_status(a));
        out.push(request_id(a, first));
        match a.status {
            401 => out.push(header_present(a, WWW_AUTHENTICATE, Check::WwwAuthenticate, "401")),
            405 => out.push(allow(a, expect.allow.as_deref())),
            429 => out.push(header_present(a, RETRY_AFTER, Check::RetryAfter, "429")),
            _ => {}
        }
    }
    if !a.body.is_empty() {
        out.push(no_leak(a));
    }
    out
}

fn status(a: &Answer, expect: &Expect) -> CheckResult {
    if expect.statuses.contains(&a.status) {
        return CheckResult::pass(Check::Status, a.status.to_string());
    }
    if let Some((_, why)) = expect.inconclusive.iter().find(|(s, _)| *s == a.status) {
        return CheckResult::skip(Check::Status, format!("{}: {why}", a.status));
    }
    CheckResult::fail(Check::Status, format!("expected {}, got {}", expect.describe(), a.status))
}

fn is_json_media(m: &str) -> bool {
    m == "application/json" || m.ends_with("+json")
}

/// RFC 9457 problem details: a title with a type or a status, none of the standard members
/// of the wrong JSON type.
fn problem_shaped(v: &Value) -> bool {
    let Value::Object(m) = v else { return false };
    m.get("title").is_some_and(Value::is_string)
        && (m.get("type").is_some_and(Value::is_string) || m.get("status").is_some_and(Value::is_u64))
}

/// Why a body labelled `application/problem+json` is not problem details, if it is not.
fn not_problem_details(v: &Value) -> Option<String> {
    let Value::Object(m) = v else { return Some("it is not a JSON object".into()) };
    for (name, ok) in [
        ("type", m.get("type").is_none_or(Value::is_string)),
        ("title", m.get("title").is_none_or(Value::is_string)),
        ("detail", m.get("detail").is_none_or(Value::is_string)),
        ("instance", m.get("instance").is_none_or(Value::is_string)),
        ("status", m.get("status").is_none_or(Value::is_u64)),
    ] {
        if !ok {
            return Some(format!("its `{name}` member has the wrong JSON type"));
        }
    }
    if !["type", "title", "status"].iter().any(|k| m.contains_key(*k)) {
        return Some("it has none of `type`, `title` and `status`".into());
    }
    None
}

fn media_type(a: &Answer) -> CheckResult {
    let c = Check::MediaType;
    let Some(media) = a.media_type() else {
        return if a.body.is_empty() {
            CheckResult::pass(c, "no body, no Content-Type")
        } else {
            CheckResult::fail(c, format!("no Content-Type for a {}-byte body", a.body.len()))
        };
    };
    if a.body.is_empty() {
        return CheckResult::pass(c, format!("{media} with no body"));
    }
    match &a.json {
        None if is_json_media(&media) => CheckResult::fail(c, format!("{media}, but the body is not JSON")),
        None => CheckResult::pass(c, format!("{media}, not JSON")),
        Some(_) if !is_json_media(&media) => CheckResult::fail(c, format!("a JSON body sent as {media}")),
        Some(v) if media == rebuff_core::dialect::PROBLEM_JSON => match not_problem_details(v) {
            Some(why) => CheckResult::fail(c, format!("{media}, but not RFC 9457 problem details: {why}")),
            None => CheckResult::pass(c, media),
        },
        Some(v) if problem_shaped(v) => CheckResult::fail(
            c,
            format!("RFC 9457 problem details sent as {media}, not application/problem+json"),
        ),
        Some(_) => CheckResult::pass(c, media),
    }
}

fn body_status(a: &Answer) -> Option<CheckResult> {
    let Some(Value::Object(m)) = &a.json else { return None };
    let member = m
        .get("status")
        .map(|v| ("status", v))
        .or_else(|| m.get("error").and_then(|e| e.get("status")).map(|v| ("error.status", v)))?;
    let number = match member.1 {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }?;
    Some(if number == u64::from(a.status) {
        CheckResult::pass(Check::BodyStatus, format!("`{}` is {number}", member.0))
    } else {
        CheckResult::fail(
            Check::BodyStatus,
            format!("`{}` is {number}, the HTTP status {}", member.0, a.status),
        )
    })
}

fn request_id(a: &Answer, first: Option<&Answer>) -> CheckResult {
    let c = Check::RequestId;
    match (a.body_request_id.as_deref(), a.header_request_id()) {
        (None, None) => CheckResult::fail(c, "no request id in the body or an X-Request-Id header"),
        (Some(b), Some(h)) if b != h => {
            // A replay is the stored first answer, byte for byte: its body names the request
            // that did the work, while the header names this exchange.
            let original = first.and_then(|f| f.body_request_id.as_deref());
            if a.replayed() && original == Some(b) {
                CheckResult::pass(c, format!("{b}, the replayed answer's; header {h}"))
            } else {
                CheckResult::fail(c, format!("the body says {b}, X-Request-Id says {h}"))
            }
        }
        (Some(id), _) | (None, Some(id)) => CheckResult::pass(c, id.to_owned()),
    }
}

/// `Allow` against the methods the path has (RFC 9110 §15.5.6: a 405 "MUST generate an Allow
/// header field ... containing a list of the target resource's currently supported methods").
fn allow(a: &Answer, known: Option<&[String]>) -> CheckResult {
    let present = header_present(a, ALLOW, Check::Allow, "405");
    let (Some(known), Outcome::Pass) = (known, present.outcome) else { return present };
    let listed: Vec<String> = a
        .headers
        .get_all(ALLOW)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|m| m.trim().to_ascii_uppercase())
        .filter(|m| !m.is_empty())
        .collect();
    let has = |m: &str| known.iter().any(|k| k == m);
    let missing: Vec<&str> = known
        .iter()
        .map(String::as_str)
        .filter(|m| !matches!(*m, "HEAD" | "OPTIONS") && !listed.iter().any(|l| l == m))
        .collect();
    // HEAD goes with GET (RFC 9110 §9.3.2) and OPTIONS is answered by most servers for any
    // path: neither is a method the document forgot.
    let extra: Vec<&str> = listed
        .iter()
        .map(String::as_str)
        .filter(|m| !(has(m) || (*m == "HEAD" && has("GET")) || *m == "OPTIONS"))
        .collect();
    let shown = listed.join(", ");
    match (missing.is_empty(), extra.is_empty()) {
        (true, true) => CheckResult::pass(Check::Allow, shown),
        (false, true) => CheckResult::fail(
            Check::Allow,
            format!("Allow: {shown} lacks {} that the path has ({})", missing.join(", "), known.join(", ")),
        ),
        (true, false) => CheckResult::fail(
            Check::Allow,
            format!(
                "Allow: {shown} names {} that the path does not have ({})",
                extra.join(", "),
                known.join(", ")
            ),
        ),
        (false, false) => CheckResult::fail(
            Check::Allow,
            format!(
                "Allow: {shown} lacks {} and names {} ({} expected)",
                missing.join(", "),
                extra.join(", "),
                known.join(", ")
            ),
        ),
    }
}

fn header_present(a: &Answer, name: http::HeaderName, check: Check, status: &str) -> CheckResult {
    match a.header(&name) {
        Some(v) if !v.trim().is_empty() => CheckResult::pass(check, v.to_owned()),
        _ => CheckResult::fail(check, format!("a {status} without {}", canonical(&name))),
    }
}

fn canonical(name: &http::HeaderName) -> &'static str {
    match name.as_str() {
        "www-authenticate" => "WWW-Authenticate",
        "allow" => "Allow",
        "retry-after" => "Retry-After",
        _ => "the header",
    }
}

fn no_leak(a: &Answer) -> CheckResult {
    let text = leak::scannable(&a.body, a.json.as_ref());
    match leak::find(&text) {
        Some(l) => CheckResult::fail(Check::NoLeak, format!("the body shows {l}")),
        None => CheckResult::pass(Check::NoLeak, "nothing found"),
    }
}

/// The 404 for a foreign id against another 404.
pub(crate) fn not_found_shape(foreign: &Answer, other: &Answer, other_name: &str) -> CheckResult {
    let c = Check::NotFoundShape;
    if foreign.parsed.envelope != other.parsed.envelope {
        return CheckResult::fail(
            c,
            format!(
                "{} here, {} for {other_name}",
                envelope_name(foreign.parsed.envelope),
                envelope_name(other.parsed.envelope)
            ),
        );
    }
    let (mine, theirs) = (foreign.members(), other.members());
    if mine != theirs {
        let only_here: Vec<&str> = mine.difference(&theirs).map(String::as_str).collect();
        let only_there: Vec<&str> = theirs.difference(&mine).map(String::as_str).collect();
        return CheckResult::fail(
            c,
            format!(
                "members differ from the 404 for {other_name}: only here [{}], only there [{}]",
                only_here.join(", "),
                only_there.join(", ")
            ),
        );
    }
    let members: Vec<&str> = mine.iter().map(String::as_str).collect();
    CheckResult::pass(c, format!("same dialect and members as {other_name}: {}", members.join(", ")))
}

/// The replay against the first answer.
pub(crate) fn replay(replay: &Answer, first: &Answer) -> CheckResult {
    let c = Check::IdempotentReplay;
    if replay.status != first.status {
        return CheckResult::fail(
            c,
            format!("the first answer was {}, the replay {}", first.status, replay.status),
        );
    }
    if replay.replayed() && replay.body != first.body {
        return CheckResult::fail(
            c,
            "marked Idempotent-Replayed, but the body differs from the first answer",
        );
    }
    if replay.replayed() {
        CheckResult::pass(c, format!("{}, replayed byte for byte", replay.status))
    } else {
        CheckResult::pass(c, format!("{} again (not marked Idempotent-Replayed)", replay.status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn answer(status: u16, headers: &[(&'static str, &str)], body: &str) -> Answer {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static("x")));
        }
        Answer::new(status, map, body.as_bytes().to_vec(), None)
    }

    fn outcome(results: &[CheckResult], check: Check) -> Option<Outcome> {
        results.iter().find(|r| r.check == check).map(|r| r.outcome)
    }

    const PROBLEM: &str = r#"{"type":"https://e.x/errors#bad_json","title":"Bad JSON","status":400,"code":"bad_json","request_id":"req_1"}"#;

    #[test]
    fn a_good_problem_passes_everything() {
        let a =
            answer(400, &[("content-type", "application/problem+json"), ("x-request-id", "req_1")], PROBLEM);
        let r = per_answer(&a, &Expect::of(&[400]), None);
        assert!(r.iter().all(|c| c.outcome == Outcome::Pass), "{r:#?}");
        assert_eq!(a.envelope_name(), "rebuff");
    }

    #[test]
    fn problem_details_as_application_json_is_a_media_type_finding() {
        let a = answer(400, &[("content-type", "application/json")], PROBLEM);
        let r = per_answer(&a, &Expect::of(&[400]), None);
        assert_eq!(outcome(&r, Check::MediaType), Some(Outcome::Fail));
    }

    #[test]
    fn other_envelopes_as_problem_json_are_a_media_type_finding() {
        let a = answer(
            404,
            &[("content-type", "application/problem+json")],
            r#"{"detail":[{"loc":["body"],"msg":"x","type":"y"}]}"#,
        );
        let r = per_answer(&a, &Expect::of(&[404]), None);
        assert_eq!(outcome(&r, Check::MediaType), Some(Outcome::Fail));
        let a = answer(
            404,
            &[("content-type", "application/json")],
            r#"{"detail":"Not Found","request_id":"r"}"#,
        );
        let r = per_answer(&a, &Expect::of(&[404]), None);
        assert_eq!(outcome(&r, Check::MediaType), Some(Outcome::Pass));
    }

    #[test]
    fn body_status_must_equal_the_http_status() {
        let a =
            answer(404, &[("content-type", "application/problem+json"), ("x-request-id", "req_1")], PROBLEM);
        let r = per_answer(&a, &Expect::of(&[404]), None);
        assert_eq!(outcome(&r, Check::BodyStatus), Some(Outcome::Fail));
        assert_eq!(outcome(&r, Check::Status), Some(Outcome::Pass));
    }

    #[test]
    fn request_ids_must_agree() {
        let a =
            answer(400, &[("content-type", "application/problem+json"), ("x-request-id", "req_2")], PROBLEM);
        let r = per_answer(&a, &Expect::of(&[400]), None);
        assert_eq!(outcome(&r, Check::RequestId), Some(Outcome::Fail));
        let a = answer(400, &[("content-type", "application/json")], r#"{"detail":"x"}"#);
        let r = per_answer(&a, &Expect::of(&[400]), None);
        assert_eq!(outcome(&r, Check::RequestId), Some(Outcome::Fail));
        let a = answer(
            400,
            &[("content-type", "application/json"), ("x-request-id", "abc")],
            r#"{"detail":"x"}"#,
        );
        let r = per_answer(&a, &Expect::of(&[400]), None);
        assert_eq!(outcome(&r, Check::RequestId), Some(Outcome::Pass));
    }

    #[test]
    fn a_replay_may_keep_the_first_request_id() {
        let first =
            answer(422, &[("content-type", "application/problem+json"), ("x-request-id", "req_1")], PROBLEM);
        let replay = answer(
            422,
            &[
                ("content-type", "application/problem+json"),
                ("x-request-id", "req_9"),
                ("idempotent-replayed", "true"),
            ],
            PROBLEM,
        );
        let r = per_answer(&replay, &Expect::of(&[422]), Some(&first));
        assert_eq!(outcome(&r, Check::RequestId), Some(Outcome::Pass));
        assert_eq!(replay_check_outcome(&replay, &first), Outcome::Pass);
    }

    fn replay_check_outcome(a: &Answer, b: &Answer) -> Outcome {
        replay(a, b).outcome
    }

    #[test]
    fn required_headers() {
        let body = r#"{"detail":"x","request_id":"r"}"#;
        for (status, check) in [(401, Check::WwwAuthenticate), (405, Check::Allow), (429, Check::RetryAfter)]
        {
            let a = answer(status, &[("content-type", "application/json")], body);
            let r = per_answer(&a, &Expect::of(&[status]), None);
            assert_eq!(outcome(&r, check), Some(Outcome::Fail), "{status}");
        }
        let a = answer(405, &[("content-type", "application/json"), ("allow", "GET, POST")], body);
        assert_eq!(outcome(&per_answer(&a, &Expect::of(&[405]), None), Check::Allow), Some(Outcome::Pass));
    }

    #[test]
    fn text_bodies() {
        let a = answer(500, &[("content-type", "text/plain")], "thread 'main' panicked at src/main.rs:3:5");
        let r = per_answer(&a, &Expect::of(&[400]), None);
        assert_eq!(outcome(&r, Check::Status), Some(Outcome::Fail));
        assert_eq!(outcome(&r, Check::MediaType), Some(Outcome::Pass));
        assert_eq!(outcome(&r, Check::NoLeak), Some(Outcome::Fail));
        let a = answer(500, &[("content-type", "application/json")], "<html>oops</html>");
        assert_eq!(
            outcome(&per_answer(&a, &Expect::of(&[500]), None), Check::MediaType),
            Some(Outcome::Fail)
        );
    }

    #[test]
    fn inconclusive_statuses_skip() {
        let a =
            answer(422, &[("content-type", "application/json"), ("x-request-id", "r")], r#"{"detail":"x"}"#);
        let mut e = Expect::of(&[413]);
        e.inconclusive.push((422, "read the whole body".into()));
        assert_eq!(outcome(&per_answer(&a, &e, None), Check::Status), Some(Outcome::Skip));
    }

    #[test]
    fn not_found_shapes_compare_members_and_dialect() {
        let h = &[("content-type", "application/json")];
        let a = answer(404, h, r#"{"error":{"code":"not_found","message":"x"},"request_id":"1"}"#);
        let b = answer(404, h, r#"{"error":{"code":"not_found","message":"y"},"request_id":"2"}"#);
        assert_eq!(not_found_shape(&a, &b, "x").outcome, Outcome::Pass);
        let c =
            answer(404, h, r#"{"error":{"code":"not_found","message":"y","param":"id"},"request_id":"2"}"#);
        assert_eq!(not_found_shape(&a, &c, "x").outcome, Outcome::Fail);
        let d = answer(404, h, r#"{"detail":"Not Found"}"#);
        assert_eq!(not_found_shape(&a, &d, "x").outcome, Outcome::Fail);
    }

    #[test]
    fn arize_5xx_fit_arize() {
        assert!(envelope_fits(Envelope::Dialect(Dialect::Arize), Envelope::Problem));
        assert!(!envelope_fits(Envelope::Dialect(Dialect::Rebuff), Envelope::Problem));
        assert!(!envelope_fits(Envelope::Dialect(Dialect::Rebuff), Envelope::Dialect(Dialect::Mlops)));
    }
}
