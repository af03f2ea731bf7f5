//! Snapshots of whole responses (status, headers, body) in each dialect.

use rebuff_core::{Catalog, FieldError, Location, Problem};

fn show(profile: &str, problem: &Problem) -> String {
    let cat = Catalog::builtin(profile).expect("built in");
    let res = cat.render(problem).expect("renders");
    let mut out = format!("{:?} {}\n", res.version(), res.status());
    let mut headers: Vec<_> = res.headers().iter().collect();
    headers.sort_by_key(|(k, _)| k.as_str());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("<binary>")));
    }
    let body: serde_json::Value = serde_json::from_slice(res.body()).expect("JSON body");
    out.push('\n');
    out.push_str(&serde_json::to_string_pretty(&body).expect("serializes"));
    out
}

fn validation() -> Problem {
    Problem::dynamic("validation_failed")
        .field(FieldError::body("/name", "required", "Name is required"))
        .field(FieldError::new(Location::Query, "/limit", "range", "limit must be between 1 and 100"))
        .request_id("req_7f3a9c2e1b")
}

fn rate_limited() -> Problem {
    Problem::dynamic("rate_limit_exceeded").retry_after(12).request_id("req_7f3a9c2e1b")
}

fn masked() -> Problem {
    Problem::dynamic("database_error")
        .detail("SQLSTATE 08006")
        .cause("connection refused")
        .request_id("req_7f3a9c2e1b")
}

macro_rules! snapshots {
    ($($name:ident => $profile:literal),* $(,)?) => {$(
        #[test]
        fn $name() {
            insta::assert_snapshot!(concat!(stringify!($name), "_validation"), show($profile, &validation()));
            insta::assert_snapshot!(concat!(stringify!($name), "_rate_limited"), show($profile, &rate_limited()));
            insta::assert_snapshot!(concat!(stringify!($name), "_masked"), show($profile, &masked()));
            insta::assert_snapshot!(
                concat!(stringify!($name), "_unauthorized"),
                show($profile, &Problem::dynamic("api_key_revoked").request_id("req_7f3a9c2e1b"))
            );
        }
    )*};
}

snapshots! {
    rebuff => "rebuff",
    arize => "arize",
    dataxid => "dataxid",
    mlops => "mlops",
    incidents => "incidents",
    apikeys => "apikeys",
}

#[test]
fn debug_rendering_shows_the_cause_and_production_never_does() {
    let cat = Catalog::standard();
    let prod = cat.render(&masked()).expect("renders");
    assert!(!String::from_utf8_lossy(prod.body()).contains("connection refused"));
    let debug = cat.render_with(&masked(), rebuff_core::RenderOptions::debug(true)).expect("renders");
    assert!(String::from_utf8_lossy(debug.body()).contains("connection refused"));
}

/// Regression: a one-second delay read "Retry after 1 seconds".
#[test]
fn a_one_second_retry_reads_in_the_singular() {
    let cat = Catalog::builtin("dataxid").expect("profile");
    let message = |secs| {
        let res = cat.render(&Problem::dynamic("rate_limit_exceeded").retry_after(secs)).expect("renders");
        let body: serde_json::Value = serde_json::from_slice(res.body()).expect("JSON");
        body.pointer("/error/message").and_then(serde_json::Value::as_str).map(str::to_owned)
    };
    assert_eq!(message(1).as_deref(), Some("Rate limit exceeded. Retry after 1 second."));
    assert_eq!(message(2).as_deref(), Some("Rate limit exceeded. Retry after 2 seconds."));
}
