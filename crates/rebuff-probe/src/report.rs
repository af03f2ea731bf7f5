//! What a probe found, and its three renderings: text for people, JSON and JUnit XML for CI.

use std::fmt::Write as _;

use serde::Serialize;

use crate::check::{Check, CheckResult, Outcome};
use crate::plan::Routes;
use crate::provocation::Provocation;

/// A feature an API may or may not offer; the probe finds out which before it checks one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Feature {
    /// `Idempotency-Key` on unsafe requests (draft-ietf-httpapi-idempotency-key-header).
    IdempotencyKeys,
    /// `RateLimit`/`RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers) or `X-RateLimit-*`.
    RateLimitHeaders,
    /// A request id on every answer (`X-Request-Id`, or in the error body).
    RequestIds,
}

impl Feature {
    /// Every feature, in report order.
    pub const ALL: [Feature; 3] = [Feature::RequestIds, Feature::IdempotencyKeys, Feature::RateLimitHeaders];

    /// The name `--expect` takes.
    pub const fn as_str(self) -> &'static str {
        match self {
            Feature::IdempotencyKeys => "idempotency",
            Feature::RateLimitHeaders => "rate-limit",
            Feature::RequestIds => "request-id",
        }
    }

    /// Parses a name made by [`Feature::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// What it is, for people.
    pub const fn describe(self) -> &'static str {
        match self {
            Feature::IdempotencyKeys => "idempotency keys",
            Feature::RateLimitHeaders => "rate-limit headers",
            Feature::RequestIds => "request ids",
        }
    }

    /// The check that fails when `--expect` requires the feature and the API lacks it.
    pub const fn check(self) -> Check {
        match self {
            Feature::IdempotencyKeys => Check::IdempotentReplay,
            Feature::RateLimitHeaders => Check::RateLimitHeaders,
            Feature::RequestIds => Check::RequestId,
        }
    }
}

impl std::fmt::Display for Feature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Feature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Whether the API offers a feature, and how the probe knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FeatureStatus {
    /// The feature.
    pub feature: Feature,
    /// Whether the API offers it.
    pub offered: bool,
    /// Whether `--expect` requires it.
    pub required: bool,
    /// What showed it (or its absence).
    pub evidence: String,
}

/// How many of the API's operations the probe reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Coverage {
    /// Operations the document declares (or the probe guessed).
    pub declared: usize,
    /// Operations at least one provocation got an answer from.
    pub reached: usize,
    /// The others, each with why: `POST /v1/x: needs credentials of scheme session`.
    pub unreached: Vec<String>,
}

/// One finding: every failed check with the same check and cause, counted, with the first
/// examples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FindingGroup {
    /// The check that failed.
    pub check: Check,
    /// What is wrong, the same for every answer in the group.
    pub cause: String,
    /// How many answers (or features) it concerns.
    pub count: usize,
    /// The first few: `POST /widgets (malformed-json): expected 400 (or 422), got 500`.
    pub examples: Vec<String>,
}

/// The note of a provocation the budget left unsent.
pub(crate) const BUDGET_NOTE: &str = "not sent: --max-requests reached";

/// How many examples a finding shows.
const EXAMPLES: usize = 3;

/// One provocation: the request, the answer, and the checks made on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Exchange {
    /// What the request tried.
    pub provocation: Provocation,
    /// The operation provoked (`GET /v1/things/{id}`), when it is one of the API's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The request's method.
    pub method: String,
    /// The request's path and query.
    pub path: String,
    /// The answer's status; `None` when nothing was sent or nothing came back.
    pub status: Option<u16>,
    /// The answer's `Content-Type`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The envelope the body was recognised as (a dialect, `rfc9457`, `other-json`, `text`,
    /// `empty`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelope: Option<String>,
    /// The request id of the answer (body, else header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Why the request was not sent, or what went wrong sending it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The checks made on the answer.
    pub checks: Vec<CheckResult>,
    /// The start of the body, kept when a check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_excerpt: Option<String>,
}

impl Exchange {
    pub(crate) fn new(provocation: Provocation, method: &str, path: &str) -> Self {
        Exchange {
            provocation,
            operation: None,
            method: method.to_owned(),
            path: path.to_owned(),
            status: None,
            content_type: None,
            envelope: None,
            request_id: None,
            note: None,
            checks: Vec::new(),
            body_excerpt: None,
        }
    }

    /// Whether every check made passed (or was skipped).
    pub fn conforms(&self) -> bool {
        self.checks.iter().all(|c| c.outcome != Outcome::Fail)
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| c.outcome == Outcome::Fail)
    }

    /// One word or a few for a table: `ok`, `ok (status skipped)`, `FAIL allow, status`, or
    /// `skipped: why`.
    pub fn verdict(&self) -> String {
        if self.checks.is_empty() {
            return format!("skipped: {}", self.note.as_deref().unwrap_or("not sent"));
        }
        let named = |outcome: Outcome| -> Vec<&str> {
            self.checks.iter().filter(|c| c.outcome == outcome).map(|c| c.check.as_str()).collect()
        };
        let (failed, skipped) = (named(Outcome::Fail), named(Outcome::Skip));
        match (failed.is_empty(), skipped.is_empty()) {
            (false, _) => format!("FAIL {}", failed.join(", ")),
            (true, true) => "ok".to_owned(),
            (true, false) => format!("ok ({} skipped)", skipped.join(", ")),
        }
    }

    /// Whether the request was sent and answered.
    pub fn answered(&self) -> bool {
        self.status.is_some()
    }
}

/// How many answers passed, failed and skipped one check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Tally {
    /// Answers that conform.
    pub pass: usize,
    /// Answers that do not.
    pub fail: usize,
    /// Answers the check could not be made on.
    pub skip: usize,
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// The URL probed.
    pub target: String,
    /// The routes provoked and where they came from.
    pub routes: Routes,
    /// The dialect every error must be in, from `--profile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_envelope: Option<String>,
    /// The envelope most errors were in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelope: Option<String>,
    /// What the probe assumed or could not do.
    pub notes: Vec<String>,
    /// Requests sent.
    pub requests: usize,
    /// The most it was allowed to send.
    pub max_requests: usize,
    /// The features offered, and which `--expect` required.
    pub features: Vec<FeatureStatus>,
    /// Operations reached over operations declared.
    pub coverage: Coverage,
    /// The findings, grouped by check and cause.
    pub findings: Vec<FindingGroup>,
    /// Why the probe stopped before the end (the API kept rate-limiting it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Every provocation, in order.
    pub exchanges: Vec<Exchange>,
    /// Whether every check passed and every required feature is offered.
    pub conforms: bool,
}

/// A report's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// A table and the findings, for people.
    Text,
    /// The whole report as JSON.
    Json,
    /// JUnit XML: one test case per provocation and check.
    Junit,
    /// Markdown, fit to paste into a pull request: the verdict, the grouped findings, the
    /// features and coverage, every provocation in a collapsed table.
    Markdown,
}

impl Report {
    /// Whether every check passed.
    pub fn conforms(&self) -> bool {
        self.conforms
    }

    /// Every failed check, with its provocation.
    pub fn findings(&self) -> impl Iterator<Item = (Provocation, &CheckResult)> {
        self.exchanges.iter().flat_map(|e| e.failures().map(move |c| (e.provocation, c)))
    }

    /// The failed checks as `(provocation, check)` pairs: what a test asserts.
    pub fn failed(&self) -> Vec<(Provocation, Check)> {
        self.findings().map(|(p, c)| (p, c.check)).collect()
    }

    /// Pass, fail and skip counts for one check.
    pub fn tally(&self, check: Check) -> Tally {
        let mut t = Tally::default();
        for c in self.exchanges.iter().flat_map(|e| &e.checks).filter(|c| c.check == check) {
            match c.outcome {
                Outcome::Pass => t.pass += 1,
                Outcome::Fail => t.fail += 1,
                Outcome::Skip => t.skip += 1,
            }
        }
        t
    }

    /// The report in a format.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => self.to_text(),
            Format::Json => self.to_json(),
            Format::Junit => self.to_junit(),
            Format::Markdown => self.to_markdown(),
        }
    }

    /// One line: how many requests, how many findings, whether it conforms.
    pub fn summary(&self) -> String {
        let findings = self.findings.len();
        let verdict = match (&self.stopped, self.conforms) {
            (_, false) => "does not conform",
            (Some(_), true) => "incomplete (rate-limited), nothing found so far",
            (None, true) => "conforms",
        };
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        format!(
            "{} request{} (at most {}), {}/{} operations, {findings} finding{}: {verdict}",
            self.requests,
            plural(self.requests),
            self.max_requests,
            self.coverage.reached,
            self.coverage.declared,
            plural(findings)
        )
    }

    /// One line per feature: `request ids: offered (X-Request-Id)`.
    fn feature_lines(&self) -> Vec<String> {
        self.features
            .iter()
            .map(|f| {
                let state = match (f.offered, f.required) {
                    (true, _) => "offered",
                    (false, false) => "not offered",
                    (false, true) => "NOT OFFERED, required by --expect",
                };
                format!("{}: {state} ({})", f.feature.describe(), f.evidence)
            })
            .collect()
    }

    /// The coverage line: `6 of 7 operations reached; not: ...`.
    fn coverage_line(&self) -> String {
        let c = &self.coverage;
        let mut s = format!("{} of {} operations reached", c.reached, c.declared);
        if !c.unreached.is_empty() {
            let _ = write!(s, "; not reached: {}", c.unreached.join("; "));
        }
        s
    }

    /// A table of provocations, the findings, and a table of checks.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "rebuff probe {}", self.target);
        let _ = writeln!(
            out,
            "routes ({}): {} operations, the key as {}",
            self.routes.source, self.coverage.declared, self.routes.credentials
        );
        match (&self.expected_envelope, &self.envelope) {
            (Some(e), _) => {
                let _ = writeln!(out, "envelope: {e} (from --profile)");
            }
            (None, Some(e)) => {
                let _ = writeln!(out, "envelope: {e} (most errors)");
            }
            (None, None) => {}
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        out.push('\n');
        let request_width = self
            .exchanges
            .iter()
            .map(|e| e.method.len() + 1 + e.path.chars().count().min(48))
            .max()
            .unwrap_or(7);
        let _ = writeln!(
            out,
            "  {:<22} {:<request_width$} {:<6} {:<10} result",
            "provocation", "request", "status", "envelope"
        );
        let unsent = |e: &Exchange| e.note.as_deref() == Some(BUDGET_NOTE);
        for e in self.exchanges.iter().filter(|e| !unsent(e)) {
            let request = format!("{} {}", e.method, clip(&e.path, 48));
            let status = e.status.map_or_else(|| "-".to_owned(), |s| s.to_string());
            let envelope = e.envelope.as_deref().unwrap_or("-");
            let result = e.verdict();
            let _ = writeln!(
                out,
                "  {:<22} {:<request_width$} {:<6} {:<10} {result}",
                e.provocation.as_str(),
                request,
                status,
                envelope
            );
        }
        let unsent = self.exchanges.iter().filter(|e| unsent(e)).count();
        if unsent > 0 {
            let _ = writeln!(out, "  ... and {unsent} more not sent: --max-requests reached");
        }
        let _ = writeln!(out, "\ncoverage: {}", self.coverage_line());
        for line in self.feature_lines() {
            let _ = writeln!(out, "feature: {line}");
        }
        if let Some(why) = &self.stopped {
            let _ = writeln!(out, "stopped: {why}");
        }
        if !self.findings.is_empty() {
            let _ = writeln!(out, "\nfindings:");
            for g in &self.findings {
                let times = if g.count == 1 { String::new() } else { format!(" ({} answers)", g.count) };
                let _ = writeln!(out, "  {}: {}{times}", g.check, g.cause);
                for e in &g.examples {
                    let _ = writeln!(out, "      {e}");
                }
            }
        }
        let _ = writeln!(out, "\n  {:<18} {:>4} {:>4} {:>4}", "check", "pass", "fail", "skip");
        for check in Check::ALL {
            let t = self.tally(check);
            if t == Tally::default() {
                continue;
            }
            let _ = writeln!(out, "  {:<18} {:>4} {:>4} {:>4}", check.as_str(), t.pass, t.fail, t.skip);
        }
        let _ = writeln!(out, "\n{}", self.summary());
        out
    }

    /// Markdown for a pull request: the verdict first, then what to fix, then the detail.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let mark = if self.conforms { "✅" } else { "❌" };
        let _ = writeln!(out, "### {mark} rebuff probe `{}`\n", md(&self.target));
        let _ = writeln!(out, "{}\n", md(&self.summary()));
        let _ = writeln!(
            out,
            "- routes: {} (credentials: {})",
            md(&self.routes.source),
            md(&self.routes.credentials.to_string())
        );
        let _ = writeln!(out, "- coverage: {}", md(&self.coverage_line()));
        match (&self.expected_envelope, &self.envelope) {
            (Some(e), _) => {
                let _ = writeln!(out, "- envelope: `{e}` (from --profile)");
            }
            (None, Some(e)) => {
                let _ = writeln!(out, "- envelope: `{e}` (most errors)");
            }
            (None, None) => {}
        }
        for line in self.feature_lines() {
            let _ = writeln!(out, "- {}", md(&line));
        }
        if let Some(why) = &self.stopped {
            let _ = writeln!(out, "- stopped: {}", md(why));
        }
        for n in &self.notes {
            let _ = writeln!(out, "- note: {}", md(n));
        }
        if !self.findings.is_empty() {
            let _ = writeln!(out, "\n#### Findings\n");
            let _ = writeln!(out, "| check | finding | answers | for example |");
            let _ = writeln!(out, "|---|---|---:|---|");
            for g in &self.findings {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | {} |",
                    g.check,
                    md(&g.cause),
                    g.count,
                    g.examples.iter().map(|e| md(e)).collect::<Vec<_>>().join("<br>")
                );
            }
        }
        let _ = writeln!(out, "\n<details><summary>{} provocations</summary>\n", self.exchanges.len());
        let _ = writeln!(out, "| provocation | request | status | envelope | result |");
        let _ = writeln!(out, "|---|---|---:|---|---|");
        for e in &self.exchanges {
            let _ = writeln!(
                out,
                "| {} | `{} {}` | {} | {} | {} |",
                e.provocation,
                e.method,
                md(&clip(&e.path, 60)).replace('`', "'"),
                e.status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
                e.envelope.as_deref().unwrap_or("-"),
                md(&e.verdict())
            );
        }
        let _ = writeln!(out, "\n</details>");
        out
    }

    /// The whole report as pretty JSON.
    pub fn to_json(&self) -> String {
        // A report holds only strings, numbers and lists: serializing it cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// JUnit XML: a test suite whose test cases are `provocation` (class) and `check`
    /// (name); a provocation that was not sent is one skipped test case named `sent`.
    pub fn to_junit(&self) -> String {
        struct Case<'a> {
            class: &'a str,
            name: &'a str,
            outcome: Outcome,
            message: &'a str,
            detail: String,
        }
        let mut cases = Vec::new();
        for e in &self.exchanges {
            if e.checks.is_empty() {
                cases.push(Case {
                    class: e.provocation.as_str(),
                    name: "sent",
                    outcome: Outcome::Skip,
                    message: e.note.as_deref().unwrap_or("not sent"),
                    detail: String::new(),
                });
                continue;
            }
            for c in &e.checks {
                let mut detail = format!("{} {}", e.method, e.path);
                if let Some(s) = e.status {
                    let _ = write!(detail, " -> {s}");
                }
                if let Some(b) = e.body_excerpt.as_deref().filter(|_| c.outcome == Outcome::Fail) {
                    let _ = write!(detail, "\n{b}");
                }
                cases.push(Case {
                    class: e.provocation.as_str(),
                    name: c.check.as_str(),
                    outcome: c.outcome,
                    message: &c.message,
                    detail,
                });
            }
        }
        // Features: offered passes, not offered is skipped, required and missing fails.
        let feature_failures: Vec<(Feature, String)> = self
            .features
            .iter()
            .map(|f| {
                let cause = self
                    .findings
                    .iter()
                    .find(|g| g.check == f.feature.check() && g.examples.iter().any(|e| e == "--expect"))
                    .map(|g| g.cause.clone())
                    .unwrap_or_default();
                (f.feature, cause)
            })
            .collect();
        for (f, (_, cause)) in self.features.iter().zip(&feature_failures) {
            let outcome = match (f.offered, f.required) {
                (true, _) => Outcome::Pass,
                (false, false) => Outcome::Skip,
                (false, true) => Outcome::Fail,
            };
            let message = if outcome == Outcome::Fail { cause.as_str() } else { f.evidence.as_str() };
            cases.push(Case {
                class: "features",
                name: f.feature.as_str(),
                outcome,
                message: if message.is_empty() { f.evidence.as_str() } else { message },
                detail: f.evidence.clone(),
            });
        }
        let failures = cases.iter().filter(|c| c.outcome == Outcome::Fail).count();
        let skipped = cases.iter().filter(|c| c.outcome == Outcome::Skip).count();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"rebuff probe\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">",
            cases.len()
        );
        let _ = writeln!(
            out,
            "  <testsuite name=\"rebuff probe {}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">",
            xml(&self.target),
            cases.len()
        );
        let _ = writeln!(out, "    <properties>");
        let mut props = vec![
            ("target", self.target.clone()),
            ("routes", self.routes.source.clone()),
            ("requests", self.requests.to_string()),
            ("max_requests", self.max_requests.to_string()),
        ];
        if let Some(e) = self.envelope.as_deref() {
            props.push(("envelope", e.to_owned()));
        }
        for (k, v) in props {
            let _ = writeln!(out, "      <property name=\"{k}\" value=\"{}\"/>", xml(&v));
        }
        let _ = writeln!(out, "    </properties>");
        for c in &cases {
            let open = format!("    <testcase classname=\"probe.{}\" name=\"{}\"", xml(c.class), xml(c.name));
            match c.outcome {
                Outcome::Pass => {
                    let _ = writeln!(out, "{open}/>");
                }
                Outcome::Fail => {
                    let _ = writeln!(
                        out,
                        "{open}>\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>",
                        xml(c.name),
                        xml(c.message),
                        xml_text(&c.detail)
                    );
                }
                Outcome::Skip => {
                    let _ = writeln!(
                        out,
                        "{open}>\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml(c.message)
                    );
                }
            }
        }
        let _ = writeln!(out, "  </testsuite>\n</testsuites>");
        out
    }
}

/// Text for a Markdown table cell: pipes escaped, no line breaks, no HTML.
fn md(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace(['\n', '\r'], " ")
}

/// What a failed check is about, the same for every answer with the same fault: the
/// message, except where it names what differs from answer to answer.
fn cause_of(check: Check, message: &str) -> String {
    match check {
        Check::RequestId if message.starts_with("the body says") => {
            "the body's request id is not X-Request-Id's".into()
        }
        Check::Allow if message.contains(" lacks ") && message.contains(" names ") => {
            "Allow lacks methods the path has and names others".into()
        }
        Check::Allow if message.contains(" lacks ") => "Allow lacks methods the path has".into(),
        Check::Allow if message.contains(" names ") => "Allow names methods the path does not have".into(),
        // `expected 415 (or 400, 404), got 422`: the alternatives differ with the route.
        Check::Status if message.starts_with("expected ") && message.contains(", got ") => {
            let first = message["expected ".len()..].split([' ', ',']).next().unwrap_or("");
            let got = message.rsplit_once(", got ").map_or("", |(_, g)| g);
            format!("expected {first}, got {got}")
        }
        // `the body shows a stack trace: `…excerpt…``: the excerpt differs, the fault not.
        Check::NoLeak => message.split_once(": ").map_or(message, |(c, _)| c).to_owned(),
        Check::NotFoundShape if message.starts_with("members differ") => {
            "a foreign id's 404 has other members than other 404s".into()
        }
        _ => message.to_owned(),
    }
}

/// Every failed check of `exchanges`, grouped by check and cause, in order of first
/// appearance, with `extra` (features required and not offered) after.
pub(crate) fn group(exchanges: &[Exchange], extra: Vec<(Check, String)>) -> Vec<FindingGroup> {
    let mut groups: Vec<FindingGroup> = Vec::new();
    let mut add = |check: Check, cause: String, example: String| match groups
        .iter_mut()
        .find(|g| g.check == check && g.cause == cause)
    {
        Some(g) => {
            g.count += 1;
            if g.examples.len() < EXAMPLES {
                g.examples.push(example);
            }
        }
        None => groups.push(FindingGroup { check, cause, count: 1, examples: vec![example] }),
    };
    for e in exchanges {
        for c in e.failures() {
            let cause = cause_of(c.check, &c.message);
            let mut example = format!("{} {} ({})", e.method, clip(&e.path, 60), e.provocation);
            if let Some(s) = e.status {
                let _ = write!(example, " -> {s}");
            }
            if cause != c.message {
                let _ = write!(example, ": {}", c.message);
            }
            add(c.check, cause, example);
        }
    }
    for (check, cause) in extra {
        add(check, cause, "--expect".to_owned());
    }
    groups
}

/// Escapes element content: like [`xml`], but line breaks stay as they are.
fn xml_text(s: &str) -> String {
    s.split('\n').map(xml).collect::<Vec<_>>().join("\n")
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Escapes text for XML attributes and content, and replaces the characters XML 1.0 cannot
/// carry at all (most control characters) with U+FFFD.
pub(crate) fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_everything_that_needs_it() {
        assert_eq!(xml("a<b>&\"c'\u{0}\u{1b}"), "a&lt;b&gt;&amp;&quot;c&apos;\u{FFFD}\u{FFFD}");
        assert_eq!(xml("line\nbreak"), "line&#10;break");
    }
}
