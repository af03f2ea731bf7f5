//! Properties: rendering then parsing gives the occurrence back, for every code of every
//! profile; the parser never panics, whatever the bytes and headers.

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use rebuff_core::{Catalog, Dialect, FieldError, Location, Problem, parse, parse_for};

fn profile_and_code() -> impl Strategy<Value = (&'static Catalog, String)> {
    let pairs: Vec<(&'static Catalog, String)> = Catalog::PROFILES
        .iter()
        .flat_map(|name| {
            let cat = Catalog::builtin(name).expect("built in");
            cat.entries().iter().map(move |e| (cat, e.code.clone()))
        })
        .collect();
    proptest::sample::select(pairs)
}

fn location() -> impl Strategy<Value = Location> {
    prop_oneof![Just(Location::Body), Just(Location::Query), Just(Location::Path), Just(Location::Header)]
}

/// Field names as APIs use them: the envelopes that key fields by a dotted name cannot carry
/// a `.` inside one token, so tokens are identifiers or array indices.
fn pointer() -> impl Strategy<Value = String> {
    prop::collection::vec(prop_oneof!["[a-z][a-z0-9_]{0,10}", "(0|[1-9][0-9]{0,2})"], 1..4)
        .prop_filter("a field name cannot start with an index", |segs| {
            !segs[0].starts_with(|c: char| c.is_ascii_digit())
        })
        .prop_map(rebuff_core::problem::pointer_from)
}

fn fields() -> impl Strategy<Value = Vec<FieldError>> {
    prop::collection::vec(
        (location(), pointer(), "[a-z_.]{1,20}", "\\PC{1,40}")
            .prop_map(|(l, p, r, m)| FieldError::new(l, p, r, m)),
        0..4,
    )
    .prop_map(|mut v| {
        // Envelopes keyed by field name hold each name once.
        let mut seen = std::collections::HashSet::new();
        v.retain(|f| seen.insert(f.pointer.clone()));
        v
    })
}

prop_compose! {
    fn occurrence()((cat, code) in profile_and_code(),
                    detail in proptest::option::of("\\PC{1,60}"),
                    request_id in proptest::option::of("req_[A-Za-z0-9]{8,24}"),
                    retry_after in proptest::option::of(0u64..100_000),
                    fields in fields()) -> (&'static Catalog, Problem) {
        let mut p = Problem::dynamic(code);
        p.detail = detail;
        p.request_id = request_id;
        p.retry_after = retry_after;
        p.fields = fields;
        (cat, p)
    }
}

proptest! {
    /// `dotted` takes a short way for pointers without an escaped token: it must give what
    /// joining the unescaped tokens gives, for any pointer, well-formed or not.
    #[test]
    fn dotted_joins_the_pointer_tokens(pointer in "(/|~|~0|~1|[a-z.]|[0-9]){0,12}") {
        let field = FieldError::body(pointer, "r", "m");
        let joined = field.segments().collect::<Vec<_>>().join(".");
        prop_assert_eq!(field.dotted(), joined);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn render_then_parse_gives_the_occurrence_back((cat, problem) in occurrence()) {
        let entry = cat.get(problem.code()).expect("entry");
        let res = cat.render(&problem).expect("renders");
        let status = res.status().as_u16();
        prop_assert_eq!(status, entry.status.as_u16());
        let (parsed, identified) = parse_for(cat, status, res.headers(), res.body());
        let identified = identified.expect("identified");
        prop_assert_eq!(identified.status, entry.status);
        prop_assert_eq!(&parsed.request_id, &problem.request_id);
        prop_assert_eq!(parsed.retry_after, problem.retry_after);
        let sends_code = match cat.dialect() {
            Dialect::Mlops => false,
            Dialect::Arize => status < 500,
            _ => true,
        };
        if sends_code {
            prop_assert_eq!(&parsed.code, &entry.wire_code);
            prop_assert_eq!(&identified.wire_code, &entry.wire_code);
        }
        let expect_fields: Vec<FieldError> = if entry.masked { Vec::new() } else { problem.fields.clone() };
        match cat.dialect() {
            Dialect::Rebuff | Dialect::Arize | Dialect::Mlops => prop_assert_eq!(&parsed.fields, &expect_fields),
            // These envelopes carry names, not locations.
            Dialect::Incidents | Dialect::Apikeys => {
                let names = |f: &[FieldError]| f.iter().map(|f| (f.pointer.clone(), f.reason.clone(), f.message.clone())).collect::<Vec<_>>();
                prop_assert_eq!(names(&parsed.fields), names(&expect_fields));
            }
            // This one names the first field only.
            Dialect::Dataxid => {
                let first = expect_fields.first().map(|f| (f.pointer.clone(), f.location));
                prop_assert_eq!(parsed.fields.first().map(|f| (f.pointer.clone(), f.location)), first);
            }
            _ => {}
        }
        if let (Some(detail), false) = (&problem.detail, entry.masked) {
            let shown = parsed.message.clone().unwrap_or_default();
            let field_message = cat.dialect() == Dialect::Dataxid && !problem.fields.is_empty();
            let mlops_fields = cat.dialect() == Dialect::Mlops && !problem.fields.is_empty();
            if !field_message && !mlops_fields {
                prop_assert!(shown.contains(detail.as_str()), "message {shown:?} lacks detail {detail:?}");
            }
        }
    }

    #[test]
    fn parser_never_panics_on_bytes(status in 0u16..1000, body in prop::collection::vec(any::<u8>(), 0..512), ct in "\\PC{0,40}", ra in "\\PC{0,30}") {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&ct) { headers.insert("content-type", v); }
        if let Ok(v) = HeaderValue::from_str(&ra) { headers.insert("retry-after", v.clone()); headers.insert("ratelimit", v); }
        let _ = parse(status, &headers, &body);
    }

    #[test]
    fn parser_never_panics_on_json(status in 400u16..600, value in json_value()) {
        let body = serde_json::to_vec(&value).expect("serializes");
        let parsed = parse(status, &HeaderMap::new(), &body);
        prop_assert_eq!(parsed.status, status);
        for name in Catalog::PROFILES {
            let _ = parse_for(Catalog::builtin(name).expect("built in"), status, &HeaderMap::new(), &body);
        }
    }
}

/// JSON objects whose members are the envelopes' member names with values of any type, so
/// that wrong types in known members are exercised, not just unknown members.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(serde_json::Value::from),
        "\\PC{0,20}".prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::hash_map(member(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    prop::collection::hash_map(member(), value, 0..8)
        .prop_map(|m| serde_json::Value::Object(m.into_iter().collect()))
}

fn member() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "type",
            "title",
            "status",
            "detail",
            "instance",
            "code",
            "error_code",
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
        "[a-z]{1,8}",
    ]
}
