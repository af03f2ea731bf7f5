//! Decoding without a network: every documented example of every profile, bodies from
//! proxies, and arbitrary bytes (which must never panic).

use http::{HeaderMap, HeaderValue, StatusCode};
use proptest::prelude::*;
use rebuff::{Catalog, Dialect, Envelope, Problem, docs};
use rebuff_client::{Contract, Kind, RetryClass};

/// The codes a client cannot tell from `code` on the wire (same status, code member, type).
fn indistinguishable(catalog: &Catalog, code: &str) -> Vec<String> {
    let form = |c: &str| {
        let res = catalog.render(&Problem::dynamic(c)).expect("renders");
        let p = rebuff::parse(res.status().as_u16(), res.headers(), res.body());
        (p.status, p.code, p.type_uri)
    };
    let mine = form(code);
    catalog.entries().iter().filter(|e| form(&e.code) == mine).map(|e| e.code.clone()).collect()
}

#[test]
fn every_documented_example_decodes_to_its_code() {
    for profile in Catalog::PROFILES {
        let catalog = Catalog::builtin(profile).expect("built in");
        let contract = Contract::builtin(profile).expect("built in");
        for entry in catalog.entries() {
            let res = catalog.render(&docs::example_problem(entry)).expect("renders");
            let e = contract.decode(res.status(), res.headers(), res.body());
            let what = format!("{profile} {}", entry.code);
            assert_eq!(e.kind(), Kind::Status, "{what}");
            assert_eq!(e.status(), Some(entry.status), "{what}");
            assert_eq!(e.dialect(), Some(catalog.dialect()), "{what}");
            assert_eq!(e.request_id(), Some("req_abc123"), "{what}");
            let stable = e.stable_code().expect("identified");
            let same = indistinguishable(catalog, &entry.code);
            assert!(same.iter().any(|c| c == stable), "{what}: {stable} not in {same:?}");
            if same.len() == 1 {
                assert_eq!(stable, entry.code, "{what}");
            }
            if entry.status == 429 || entry.retry == RetryClass::RetryAfter {
                assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(12)), "{what}");
            }
            if entry.status == StatusCode::UNPROCESSABLE_ENTITY && catalog.dialect() != Dialect::Dataxid {
                assert_eq!(e.fields().len(), 1, "{what}: {e:?}");
            }
            if catalog.dialect() == Dialect::Dataxid {
                assert_eq!(e.category(), Some(entry.category.as_str()), "{what}");
            }
        }
    }
}

#[test]
fn the_seeds_examples_decode() {
    let dataxid = Contract::builtin("dataxid").expect("built in");
    let body = br#"{"error":{"type":"invalid_request_error","code":"parameter_invalid","message":"batch_size must be positive","doc_url":"https://docs.dataxid.com/docs/errors#parameter_invalid","param":"body.config.batch_size"},"request_id":"req_abc123"}"#;
    let e = dataxid.decode(StatusCode::BAD_REQUEST, &HeaderMap::new(), body);
    assert_eq!(e.stable_code(), Some("parameter_invalid"));
    assert_eq!(e.param(), Some("body.config.batch_size"));
    assert_eq!(e.fields()[0].pointer, "/config/batch_size");
    assert_eq!(e.category(), Some("invalid_request_error"));
    assert_eq!(e.retry_class(), RetryClass::AfterFix);

    let mlops = Contract::builtin("mlops").expect("built in");
    let body = br#"{"detail":[{"loc":["body","name"],"msg":"Field required","type":"missing"}]}"#;
    let e = mlops.decode(StatusCode::UNPROCESSABLE_ENTITY, &HeaderMap::new(), body);
    assert_eq!(e.dialect(), Some(Dialect::Mlops));
    assert_eq!(e.fields()[0].pointer, "/name");
    assert_eq!(e.fields()[0].message, "Field required");

    let incidents = Contract::builtin("incidents").expect("built in");
    let body = br#"{"code":"VALIDATION_ERROR","message":"Validation failed","details":{"email":{"code":"invalid_format","message":"bad"}},"request_id":"req_9"}"#;
    let e = incidents.decode(StatusCode::UNPROCESSABLE_ENTITY, &HeaderMap::new(), body);
    assert_eq!(e.code(), Some("VALIDATION_ERROR"));
    assert_eq!(e.fields()[0].pointer, "/email");
    assert_eq!(e.request_id(), Some("req_9"));

    let apikeys = Contract::builtin("apikeys").expect("built in");
    let body = br#"{"code":"rate_limit_exceeded","message":"Too many requests","request_id":"req_1"}"#;
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_static("30"));
    let e = apikeys.decode(StatusCode::TOO_MANY_REQUESTS, &headers, body);
    assert_eq!(e.stable_code(), Some("rate_limit_exceeded"));
    assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(30)));
    assert!(e.is_retryable());
}

#[test]
fn bodies_from_proxies_fall_back_to_the_status() {
    let rebuff = Contract::builtin("rebuff").expect("built in");
    let mut html = HeaderMap::new();
    html.insert("content-type", HeaderValue::from_static("text/html"));
    let e =
        rebuff.decode(StatusCode::BAD_GATEWAY, &html, b"<html><body><h1>502 Bad Gateway</h1></body></html>");
    assert_eq!(e.envelope(), Some(Envelope::Text));
    assert_eq!(e.stable_code(), Some("bad_gateway"));
    assert_eq!(e.message(), None, "an HTML page is not a message");
    assert!(e.is_retryable());

    let mut text = HeaderMap::new();
    text.insert("content-type", HeaderValue::from_static("text/plain"));
    text.insert("x-request-id", HeaderValue::from_static("req_proxy"));
    let e = rebuff.decode(StatusCode::SERVICE_UNAVAILABLE, &text, b"upstream connect error");
    assert_eq!((e.message(), e.request_id()), (Some("upstream connect error"), Some("req_proxy")));

    let e = rebuff.decode(StatusCode::GATEWAY_TIMEOUT, &HeaderMap::new(), b"");
    assert_eq!((e.envelope(), e.stable_code()), (Some(Envelope::Empty), Some("gateway_timeout")));
    assert_eq!(e.title(), Some("Gateway Timeout"));

    // A status the catalog does not have: no stable code, a class from the status.
    let e = rebuff.decode(StatusCode::IM_A_TEAPOT, &HeaderMap::new(), b"{}");
    assert_eq!(e.stable_code(), None);
    assert_eq!(e.retry_class(), RetryClass::AfterFix);
    let e = rebuff.decode(StatusCode::NOT_IMPLEMENTED, &HeaderMap::new(), b"");
    assert_eq!((e.stable_code(), e.is_retryable()), (None, false));

    // A code the catalog does not have: the generic code of its status.
    let body = br#"{"type":"about:blank","title":"Nope","status":409,"code":"brand_new_code"}"#;
    let e = rebuff.decode(StatusCode::CONFLICT, &HeaderMap::new(), body);
    assert_eq!((e.code(), e.stable_code()), (Some("brand_new_code"), Some("resource_conflict")));
}

#[test]
fn without_a_contract_everything_but_the_stable_code_is_decoded() {
    let none = Contract::none();
    let body = br#"{"type":"https://rebuff.dev/errors#api_key_expired","title":"API key expired","status":401,"detail":"This API key expired on 2024-01-01.","code":"api_key_expired","request_id":"req_1"}"#;
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/problem+json"));
    let e = none.decode(StatusCode::UNAUTHORIZED, &h, body);
    assert_eq!(e.code(), Some("api_key_expired"));
    assert_eq!(e.stable_code(), None);
    assert_eq!(e.code_as::<rebuff::standard::Code>(), None);
    assert!(e.needs_reauth(), "401 is renewed by status");
    assert_eq!(
        e.to_string(),
        "HTTP 401 api_key_expired: This API key expired on 2024-01-01. (request req_1)"
    );
}

#[tokio::test]
async fn check_passes_successes_and_decodes_errors() {
    let contract = Contract::builtin("apikeys").expect("built in");
    let ok = reqwest::Response::from(http::Response::new("fine"));
    assert_eq!(contract.check(ok).await.expect("a success").text().await.expect("body"), "fine");
    let body = r#"{"code":"validation_error","message":"Invalid","details":[{"field":"config.batch_size","code":"too_small","message":"must be > 0"}],"request_id":"req_2"}"#;
    let mut res = http::Response::new(body);
    *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    let e = contract.check(reqwest::Response::from(res)).await.expect_err("an error");
    assert_eq!((e.code(), e.retry_class()), (Some("validation_error"), RetryClass::AfterFix));
    assert_eq!(
        (e.fields()[0].pointer.as_str(), e.fields()[0].reason.as_str()),
        ("/config/batch_size", "too_small")
    );
}

fn status() -> impl Strategy<Value = StatusCode> {
    (100u16..=999).prop_filter_map("valid", |s| StatusCode::from_u16(s).ok())
}

/// Bodies that look like the envelopes, with members of any type.
fn envelope_like() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, Into::into)),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(member(), inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    prop::collection::btree_map(member(), value, 0..8).prop_map(|m| {
        serde_json::to_vec(&serde_json::Value::Object(m.into_iter().collect())).unwrap_or_default()
    })
}

fn member() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "type",
            "title",
            "status",
            "detail",
            "instance",
            "error_code",
            "code",
            "message",
            "request_id",
            "error",
            "param",
            "doc_url",
            "details",
            "errors",
            "retry_after",
            "loc",
            "msg",
            "pointer",
            "field",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,8}",
    ]
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    (
        prop::option::of("[ -~]{0,40}"),
        prop::option::of("[ -~]{0,40}"),
        prop::option::of("[ -~]{0,40}"),
        prop::option::of("[ -~]{0,40}"),
    )
        .prop_map(|(ct, ra, rl, date)| {
            let mut h = HeaderMap::new();
            for (name, v) in [("content-type", ct), ("retry-after", ra), ("ratelimit", rl), ("date", date)] {
                if let Some(v) = v.and_then(|v| HeaderValue::from_str(&v).ok()) {
                    h.insert(name, v);
                }
            }
            h
        })
}

fn contracts() -> Vec<Contract> {
    let mut all = vec![Contract::none()];
    all.extend(Catalog::PROFILES.iter().filter_map(|p| Contract::builtin(p)));
    all
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(status in status(), headers in headers(), body in prop::collection::vec(any::<u8>(), 0..256)) {
        for c in contracts() {
            let e = c.decode(status, &headers, &body);
            prop_assert_eq!(e.status(), Some(status));
            let _ = (e.to_string(), format!("{e:?}"), e.retry_class(), e.fields().len());
        }
    }

    #[test]
    fn envelope_like_bodies_never_panic(status in status(), headers in headers(), body in envelope_like()) {
        for c in contracts() {
            let e = c.decode(status, &headers, &body);
            prop_assert_eq!(e.kind(), Kind::Status);
            let _ = (e.to_string(), e.stable_code(), e.category(), e.retry_after(), e.dialect());
        }
    }
}
