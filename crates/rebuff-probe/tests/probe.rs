//! The probe against real servers: the reference API in every profile, a sloppy API that
//! gets four things wrong, and servers that count what reaches them.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::StatusCode;
use rebuff_probe::{Check, Config, Outcome, Provocation, Report};
use support::{SLOPPY_KEY, Seen};

fn config(base: &str, key: &str) -> Config {
    let mut c = Config::new(base);
    c.key = Some(key.to_owned());
    c.timeout = Duration::from_secs(20);
    c
}

async fn probe(c: &Config) -> Report {
    rebuff_probe::run(c).await.unwrap_or_else(|e| panic!("probe failed to run: {e}"))
}

fn failed(report: &Report) -> BTreeSet<(Provocation, Check)> {
    report.failed().into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_api_conforms_in_every_profile() {
    for profile in rebuff_core::Catalog::PROFILES {
        let server = support::reference(profile, 10_000).await;
        let mut c = config(&server.base, &server.admin);
        c.openapi = Some(format!("{}/openapi.json", server.base));
        c.profile = Some(profile.to_owned());
        // Enough for every provocation of every operation.
        c.max_requests = 200;
        let report = probe(&c).await;
        assert!(report.conforms(), "{profile}:\n{}", report.to_text());
        // Every operation was reached (logout, which takes a session cookie only, by its
        // path's wrong method).
        assert_eq!(report.coverage.reached, report.coverage.declared, "{profile}: {:?}", report.coverage);
        assert_eq!(report.coverage.declared, 22);
        assert!(report.features.iter().all(|f| f.offered), "{:?}", report.features);
        assert_eq!(report.envelope.as_deref(), Some(profile), "{profile}");
        assert_eq!(report.routes.collection, "/v1/projects");
        assert_eq!(report.routes.item, "/v1/projects/{id}");
        assert_eq!(report.routes.create, "/v1/projects");
        // Every provocation but the burst and those needing credentials the probe cannot have
        // (a session, a webhook signature) was sent, answered, and passed every check.
        for e in &report.exchanges {
            if e.provocation == Provocation::RateLimit {
                assert_eq!(e.note.as_deref(), Some("only with --burst"));
                continue;
            }
            if e.note.as_deref().is_some_and(|n| n.starts_with("needs ")) {
                continue;
            }
            assert!(e.answered(), "{profile}: {} not answered:\n{}", e.provocation, report.to_text());
            // A UUID stands in for ids of collections the probe did not list: 400 says the
            // API's ids look different, which is no finding and no pass.
            let uuid =
                e.path.contains(rebuff_probe_fallback_uuid()) && e.provocation == Provocation::ForeignId;
            assert!(
                e.checks.iter().all(|c| c.outcome == Outcome::Pass || (uuid && c.check == Check::Status)),
                "{profile}: {}:\n{}",
                e.provocation,
                report.to_json()
            );
        }
        let foreign = report.exchanges.iter().find(|e| e.provocation == Provocation::ForeignId);
        let shape = foreign.and_then(|e| e.checks.iter().find(|c| c.check == Check::NotFoundShape));
        assert_eq!(shape.map(|c| c.outcome), Some(Outcome::Pass), "{profile}");
    }
}

/// The UUID the probe uses where it has no id to imitate.
fn rebuff_probe_fallback_uuid() -> &'static str {
    "5b0e7c1a-9d3f-4e2b-8a6c-1f4d7e9b2c30"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_api_conforms_past_its_rate_limit() {
    // A limit above what the provocations use, so that only the burst meets it.
    let server = support::reference("rebuff", 150).await;
    let mut c = config(&server.base, &server.admin);
    c.openapi = Some(format!("{}/openapi.json", server.base));
    c.max_requests = 250;
    c.burst = true;
    let report = probe(&c).await;
    assert!(report.conforms(), "{}", report.to_text());
    let burst = report.exchanges.iter().find(|e| e.provocation == Provocation::RateLimit);
    let burst = burst.unwrap_or_else(|| panic!("no burst"));
    assert_eq!(burst.status, Some(429), "{}", report.to_text());
    let retry = burst.checks.iter().find(|c| c.check == Check::RetryAfter).map(|c| c.outcome);
    assert_eq!(retry, Some(Outcome::Pass));
    assert!(report.requests <= 250 && report.requests > 150, "{}", report.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_requires_its_dialect() {
    let server = support::reference("apikeys", 10_000).await;
    let mut c = config(&server.base, &server.admin);
    c.profile = Some("incidents".into());
    let report = probe(&c).await;
    let expected: BTreeSet<(Provocation, Check)> =
        report.exchanges.iter().filter(|e| e.answered()).map(|e| (e.provocation, Check::Envelope)).collect();
    assert!(expected.len() >= 14, "{expected:?}");
    assert_eq!(failed(&report), expected, "{}", report.to_text());
    let (_, finding) = report.findings().next().unwrap_or_else(|| panic!("no finding"));
    assert_eq!(finding.message, "apikeys, but the profile's dialect is incidents");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_the_budget_cannot_finish_is_not_started() {
    let server = support::reference("dataxid", 10_000).await;
    let mut c = config(&server.base, &server.admin);
    c.burst = true;
    c.max_requests = 150;
    let report = probe(&c).await;
    assert!(report.conforms(), "{}", report.to_text());
    let burst = report.exchanges.iter().find(|e| e.provocation == Provocation::RateLimit);
    let note = burst.and_then(|e| e.note.as_deref()).unwrap_or_default();
    assert!(note.contains("raise --max-requests to at least"), "{note}");
    assert!(report.requests < 120, "{}", report.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_it_checks_authentication_and_skips_the_rest() {
    let server = support::reference("incidents", 10_000).await;
    let mut c = Config::new(&server.base);
    c.openapi = Some(format!("{}/openapi.json", server.base));
    let report = probe(&c).await;
    assert!(report.conforms(), "{}", report.to_text());
    for e in &report.exchanges {
        let answered = matches!(
            e.provocation,
            Provocation::NoCredentials
                | Provocation::MalformedCredentials
                | Provocation::UnknownCredentials
                | Provocation::UnknownRoute
                | Provocation::WrongMethod
        );
        if answered {
            assert!(e.answered(), "{}:\n{}", e.provocation, report.to_text());
        }
        // What lies behind authentication is skipped; open operations (login) are provoked.
        if !e.answered() && e.provocation != Provocation::RateLimit {
            let note = e.note.as_deref().unwrap_or_default();
            assert!(note.starts_with("needs ") || note.starts_with("not sent: --max-requests"), "{note}");
        }
        if e.path.starts_with("/v1/projects") && !answered && e.provocation != Provocation::RateLimit {
            assert!(e.note.as_deref().is_some_and(|n| n.starts_with("needs --key")), "{:?}", e.note);
        }
    }
    let login = report
        .exchanges
        .iter()
        .find(|e| e.path == "/v1/auth/login" && e.provocation == Provocation::WrongBodyType);
    assert_eq!(login.and_then(|e| e.status), Some(400), "{}", report.to_text());
}

/// The sloppy API's four faults, each reported where it happens, and nothing else.
fn sloppy_findings(burst: bool) -> BTreeSet<(Provocation, Check)> {
    let mut expected = BTreeSet::from([
        // A plain-text 500 with a stack trace for malformed JSON.
        (Provocation::MalformedJson, Check::Status),
        (Provocation::MalformedJson, Check::Envelope),
        (Provocation::MalformedJson, Check::NoLeak),
        // Mixed envelopes: its 415s are `{"detail": ...}`, everything else RFC 9457.
        (Provocation::MissingContentType, Check::Envelope),
        (Provocation::WrongContentType, Check::Envelope),
        // 405 without Allow, and a 404 for a method an item path lacks.
        (Provocation::WrongMethod, Check::Allow),
        (Provocation::WrongMethod, Check::Status),
    ]);
    if burst {
        // 429 without Retry-After.
        expected.insert((Provocation::RateLimit, Check::RetryAfter));
    }
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sloppy_api_gets_exactly_its_findings() {
    let base = support::serve(support::sloppy()).await;
    let mut c = config(&base, SLOPPY_KEY);
    c.burst = true;
    let report = probe(&c).await;
    assert_eq!(failed(&report), sloppy_findings(true), "{}", report.to_text());
    assert!(!report.conforms());
    assert_eq!(report.envelope.as_deref(), Some("rebuff"));
    assert!(report.routes.source.contains("/openapi.json"), "{}", report.routes.source);

    let message = |p: Provocation, c: Check| {
        report
            .findings()
            .find(|(fp, f)| *fp == p && f.check == c)
            .map(|(_, f)| f.message.clone())
            .unwrap_or_default()
    };
    assert_eq!(message(Provocation::MalformedJson, Check::Status), "expected 400 (or 422), got 500");
    assert!(message(Provocation::MalformedJson, Check::NoLeak).contains("a stack trace"));
    assert!(message(Provocation::MalformedJson, Check::Envelope).contains("not JSON"));
    assert!(message(Provocation::MissingContentType, Check::Envelope).starts_with("mlops here, rebuff in"));
    assert_eq!(message(Provocation::WrongMethod, Check::Allow), "a 405 without Allow");
    assert_eq!(message(Provocation::RateLimit, Check::RetryAfter), "a 429 without Retry-After");
    let crash = report.exchanges.iter().find(|e| e.provocation == Provocation::MalformedJson);
    assert!(crash.and_then(|e| e.body_excerpt.as_deref()).is_some_and(|b| b.contains("panicked at")));

    // The same findings whatever the format.
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap_or_default();
    let failures = json["exchanges"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["checks"].as_array().into_iter().flatten().filter(|c| c["outcome"] == "fail"))
        .count();
    assert_eq!(failures, sloppy_findings(true).len());
    let junit = report.to_junit();
    assert_well_formed_xml(&junit);
    assert!(junit.contains(&format!("failures=\"{}\"", sloppy_findings(true).len())), "{junit}");
    assert!(junit.contains("<testcase classname=\"probe.wrong-method\" name=\"allow\">"), "{junit}");
    let text = report.to_text();
    // One finding per check and cause, with its examples.
    assert!(
        text.contains(
            "\n  no-leak: the body shows a stack trace\n      POST /v1/things (malformed-json) -> 500"
        ),
        "{text}"
    );
    assert!(text.contains("\n  envelope: mlops here, rebuff in 11 of 14 errors (2 answers)\n"), "{text}");
    assert_eq!(report.findings.len(), 7, "{text}");
    let md = report.to_markdown();
    assert!(md.starts_with("### ❌ rebuff probe `http://127.0.0.1:"), "{md}");
    assert!(
        md.contains(
            "| `no-leak` | the body shows a stack trace | 1 | POST /v1/things (malformed-json) -&gt; 500: "
        ),
        "{md}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessed_routes_find_the_same_faults() {
    let base = support::serve(support::sloppy()).await;
    let report = probe(&config(&format!("{base}/v1/things"), SLOPPY_KEY)).await;
    assert_eq!(report.routes.source, "guessed");
    assert!(report.notes.iter().any(|n| n.starts_with("no OpenAPI document")), "{:?}", report.notes);
    assert_eq!(failed(&report), sloppy_findings(false), "{}", report.to_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_never_sends_more_than_max_requests() {
    for max in [1, 2, 5, 13, 40] {
        let seen = Seen::default();
        let base = support::serve(support::counting(seen.clone(), StatusCode::OK, None)).await;
        let mut c = config(&base, "key_0123456789");
        c.max_requests = max;
        c.burst = true;
        let report = probe(&c).await;
        // Everything answers 200, so the burst uses what is left: exactly the budget.
        assert_eq!(seen.count(), max, "max {max}");
        assert_eq!(report.requests, max);
        if max < 17 {
            assert!(
                report
                    .exchanges
                    .iter()
                    .any(|e| e.note.as_deref() == Some("not sent: --max-requests reached")),
                "max {max}:\n{}",
                report.to_text()
            );
        }
    }
    // Without --burst, the plan itself stays within a small budget.
    let seen = Seen::default();
    let base = support::serve(support::counting(seen.clone(), StatusCode::NOT_FOUND, None)).await;
    let mut c = config(&base, "key_0123456789");
    c.max_requests = 3;
    let report = probe(&c).await;
    assert_eq!(seen.count(), 3);
    assert_eq!(report.requests, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_only_talks_to_the_host_it_was_given() {
    let elsewhere = Seen::default();
    let other = support::serve(support::counting(elsewhere.clone(), StatusCode::OK, None)).await;
    let here = Seen::default();
    let location = format!("{other}/v1/projects");
    let base =
        support::serve(support::counting(here.clone(), StatusCode::TEMPORARY_REDIRECT, Some(location))).await;
    let mut c = config(&base, "key_0123456789");
    c.burst = true;
    let report = probe(&c).await;
    assert!(here.count() > 10, "{}", here.count());
    assert_eq!(elsewhere.count(), 0, "a redirect was followed to another host");
    let host = base.trim_start_matches("http://");
    assert!(here.hosts().iter().all(|h| h == host), "{:?}", here.hosts());
    // A redirect is no error answer: every provocation's status check says so.
    assert!(report.failed().iter().any(|(_, c)| *c == Check::Status));

    // An OpenAPI document on another host is refused before anything is sent.
    let mut c = config(&base, "key_0123456789");
    c.openapi = Some(format!("{other}/openapi.json"));
    let before = here.count();
    let err = rebuff_probe::run(&c).await.err().unwrap_or_else(|| panic!("fetched from another host"));
    assert!(err.is_usage(), "{err}");
    assert!(err.to_string().contains("refusing to fetch the OpenAPI document"), "{err}");
    assert_eq!(elsewhere.count(), 0);
    assert_eq!(here.count(), before);
}

#[tokio::test]
async fn an_unreachable_target_is_an_error() {
    let err = rebuff_probe::run(&Config::new(support::closed_port())).await.err();
    let err = err.unwrap_or_else(|| panic!("a closed port answered"));
    assert!(err.is_unreachable(), "{err}");
    assert!(err.to_string().starts_with("cannot reach http://127.0.0.1:"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_is_a_usage_error() {
    let server = support::reference("rebuff", 10_000).await;
    let err =
        rebuff_probe::run(&config(&server.base, "rb_test_000000000000_00000000000000000000000000000000"))
            .await;
    let err = err.err().unwrap_or_else(|| panic!("a bad key was accepted"));
    assert!(err.is_usage(), "{err}");
    assert!(err.to_string().contains("refuses --key"), "{err}");
}

#[tokio::test]
async fn usage_errors() {
    for (url, openapi, expect) in [
        ("not a url", None, "is not a URL"),
        ("ftp://example.com", None, "is not http or https"),
        ("http://127.0.0.1:9", Some("/nonexistent/openapi.json"), "cannot read"),
    ] {
        let mut c = Config::new(url);
        c.openapi = openapi.map(str::to_owned);
        let err = rebuff_probe::run(&c).await.err().unwrap_or_else(|| panic!("{url} ran"));
        assert!(err.is_usage() && err.to_string().contains(expect), "{url}: {err}");
    }
}

/// A small well-formedness check: one root, tags balance, attribute values quoted, and no raw
/// `<` or stray `&` in text or attributes.
fn assert_well_formed_xml(xml: &str) {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .unwrap_or_else(|| panic!("no prolog"));
    let mut stack: Vec<String> = Vec::new();
    let mut rest = body;
    let mut roots = 0;
    while let Some(open) = rest.find('<') {
        check_text(&rest[..open]);
        let close = rest[open..].find('>').unwrap_or_else(|| panic!("unclosed tag")) + open;
        let tag = &rest[open + 1..close];
        assert!(!tag.contains('<'), "`<` inside a tag: {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
        } else {
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let name = tag.split_whitespace().next().unwrap_or("").to_owned();
            let attrs = &tag[name.len()..];
            assert_eq!(attrs.matches('"').count() % 2, 0, "unbalanced quotes: {tag}");
            for value in attrs.split('"').skip(1).step_by(2) {
                check_text(value);
            }
            if stack.is_empty() {
                roots += 1;
            }
            if !self_closing {
                stack.push(name);
            }
        }
        rest = &rest[close + 1..];
    }
    check_text(rest);
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert_eq!(roots, 1);

    fn check_text(text: &str) {
        for (i, _) in text.match_indices('&') {
            let entity = &text[i..text[i..].find(';').map_or(text.len(), |e| i + e + 1)];
            let ok = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains(&entity)
                || (entity.starts_with("&#")
                    && entity[2..entity.len() - 1].bytes().all(|b| b.is_ascii_digit()));
            assert!(ok, "bad entity {entity}");
        }
        assert!(text.chars().all(|c| c >= ' ' || c == '\n'), "control character in {text:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca() {
    let server = support::tls::serve_https(support::sloppy()).await;
    assert!(server.base.starts_with("https://127.0.0.1:"));
    // The webpki roots do not know the test's CA: the handshake fails, and nothing is probed.
    let err = rebuff_probe::run(&config(&server.base, SLOPPY_KEY)).await.err();
    let err = err.unwrap_or_else(|| panic!("an unknown CA was trusted"));
    assert!(err.is_unreachable(), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    // With the CA trusted, the same findings as over plain HTTP.
    let mut c = config(&server.base, SLOPPY_KEY);
    c.root_certificates.push(server.ca_pem.clone().into_bytes());
    let report = probe(&c).await;
    assert_eq!(failed(&report), sloppy_findings(false), "{}", report.to_text());
    // Not a certificate at all.
    let mut c = config(&server.base, SLOPPY_KEY);
    c.root_certificates.push(b"not a certificate".to_vec());
    let err = rebuff_probe::run(&c).await.err().unwrap_or_else(|| panic!("garbage trusted"));
    assert!(err.is_usage() && err.to_string().contains("--cacert"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_is_waited_out_not_reported() {
    let limited = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let base = support::serve(support::rate_limited(support::sloppy(), 6, limited.clone())).await;
    let report = probe(&config(&base, SLOPPY_KEY)).await;
    // Exactly the sloppy API's own findings: no 429 is one.
    assert_eq!(failed(&report), sloppy_findings(false), "{}", report.to_text());
    assert!(report.exchanges.iter().all(|e| e.status != Some(429)), "{}", report.to_text());
    assert!(report.stopped.is_none(), "{:?}", report.stopped);
    assert!(
        report.notes.iter().any(|n| n.starts_with("the API rate-limits the probe; it waits")),
        "{:?}",
        report.notes
    );
    // It paced itself when the limit was spent, so that few requests, if any, met a 429.
    assert!(report.notes.iter().any(|n| n.contains("its rate limit is spent")), "{:?}", report.notes);
    let met = limited.load(std::sync::atomic::Ordering::Relaxed);
    assert!(met <= 4, "{met}: {}", report.to_text());
    assert_eq!(report.coverage.reached, report.coverage.declared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_past_max_wait_stops_the_probe_without_findings() {
    let limited = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let base = support::serve(support::rate_limited(support::sloppy(), 6, limited.clone())).await;
    let mut c = config(&base, SLOPPY_KEY);
    c.max_wait = Duration::ZERO;
    let report = probe(&c).await;
    let stopped = report.stopped.clone().unwrap_or_else(|| panic!("not stopped:\n{}", report.to_text()));
    assert!(stopped.starts_with("rate-limited: 429 to "), "{stopped}");
    assert!(stopped.contains("past --max-wait"), "{stopped}");
    // Once stopped it sends nothing more: one 429, then only skips.
    assert_eq!(limited.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert!(report.findings().all(|(_, f)| !f.message.contains("429")), "{}", report.to_text());
    let skipped = report
        .exchanges
        .iter()
        .filter(|e| e.note.as_deref().is_some_and(|n| n.starts_with("rate-limited")))
        .count();
    assert!(skipped > 3, "{}", report.to_text());
    assert!(report.to_text().contains("\nstopped: rate-limited: 429 to "), "{}", report.to_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_go_where_the_security_scheme_says() {
    use support::{KEYED_KEY, KeyIn};
    for key_in in [KeyIn::Header, KeyIn::Query, KeyIn::Cookie, KeyIn::Basic] {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let base = support::serve(support::keyed(key_in, seen.clone())).await;
        let report = probe(&config(&base, KEYED_KEY)).await;
        // The key was accepted (else: "the API refuses --key"), and every provocation conforms.
        assert!(report.conforms(), "{key_in:?}:\n{}", report.to_text());
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        // The malformed and the unknown credential went where the key goes.
        assert!(seen.iter().any(|s| s.contains("!!not-a-key!!")), "{key_in:?}: {seen:?}");
        assert!(seen.iter().any(|s| s != KEYED_KEY && !s.contains("not-a-key")), "{key_in:?}: {seen:?}");
        assert!(seen.iter().filter(|s| *s == KEYED_KEY).count() > 3, "{key_in:?}: {seen:?}");
    }
    // Without a document, --auth-header names the header.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let base = support::serve(support::keyed(KeyIn::Header, seen.clone())).await;
    let mut c = config(&format!("{base}/things"), KEYED_KEY);
    c.auth_header = Some("X-API-Key".into());
    let report = probe(&c).await;
    assert!(
        report.routes.source == "guessed" || report.routes.source.contains("openapi"),
        "{}",
        report.routes.source
    );
    assert_eq!(report.routes.credentials.to_string(), "header x-api-key");
    assert!(seen.lock().map(|s| s.iter().any(|k| k.contains("!!not-a-key!!"))).unwrap_or(false));
    // A bad header name is a usage error.
    let mut c = config(&base, KEYED_KEY);
    c.auth_header = Some("bad header".into());
    let err = rebuff_probe::run(&c).await.err().unwrap_or_else(|| panic!("a bad header name was used"));
    assert!(err.is_usage() && err.to_string().contains("--auth-header"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn features_not_offered_are_findings_only_when_expected() {
    use rebuff_probe::Feature;
    // The keyed API has request ids in its bodies, but no idempotency and no rate-limit headers.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let base = support::serve(support::keyed(support::KeyIn::Header, seen)).await;
    let report = probe(&config(&base, support::KEYED_KEY)).await;
    assert!(report.conforms(), "{}", report.to_text());
    let offered: Vec<(Feature, bool)> = report.features.iter().map(|f| (f.feature, f.offered)).collect();
    assert_eq!(
        offered,
        vec![
            (Feature::RequestIds, true),
            (Feature::IdempotencyKeys, false),
            (Feature::RateLimitHeaders, false)
        ]
    );
    assert!(report.to_text().contains("feature: idempotency keys: not offered"), "{}", report.to_text());

    let mut c = config(&base, support::KEYED_KEY);
    c.expect = vec![Feature::IdempotencyKeys, Feature::RateLimitHeaders];
    let report = probe(&c).await;
    assert!(!report.conforms());
    let found: Vec<(Check, &str)> = report.findings.iter().map(|g| (g.check, g.cause.as_str())).collect();
    assert!(
        found.contains(&(
            Check::RateLimitHeaders,
            "rate-limit headers are required by --expect and no answer carries one"
        )),
        "{found:?}"
    );
    assert!(found.iter().any(|(c, _)| *c == Check::IdempotentReplay), "{found:?}");
    let junit = report.to_junit();
    assert!(junit.contains("classname=\"probe.features\" name=\"rate-limit\""), "{junit}");
}
