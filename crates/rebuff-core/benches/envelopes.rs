//! Rendering and parsing, next to `http-api-problem` and plain `serde_json` in the same run.
//!
//! `cargo bench -p rebuff-core --bench envelopes`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use rebuff_core::{Catalog, ErrorCode, FieldError, Problem, parse};

/// A typed code, as services name them (what `rebuff::catalog!` generates).
#[derive(Debug, Clone, Copy)]
struct NotFound;

impl ErrorCode for NotFound {
    fn as_str(&self) -> &'static str {
        "resource_not_found"
    }
}

const DETAIL: &str = "Dataset with ID 'ZGF0YXNldC10ZXN0' was not found.";
const REQUEST_ID: &str = "req_7f3a9c2e1b4d";

fn render(c: &mut Criterion) {
    let mut g = c.benchmark_group("render_404");
    let standard = Catalog::standard();
    g.bench_function("rebuff", |b| {
        b.iter(|| {
            let p = Problem::new(black_box(NotFound)).detail(DETAIL).request_id(REQUEST_ID);
            black_box(standard.render(&p).expect("renders"))
        })
    });
    // The same problem, same members, as a complete response.
    g.bench_function("http_api_problem", |b| {
        b.iter(|| {
            let p = http_api_problem::HttpApiProblem::new(StatusCode::NOT_FOUND)
                .type_url("https://rebuff.dev/errors#resource_not_found")
                .title("Resource not found")
                .detail(black_box(DETAIL))
                .value("code", &"resource_not_found")
                .value("request_id", &REQUEST_ID)
                .value("retry", &"never");
            let mut res = Response::new(p.json_bytes());
            *res.status_mut() = StatusCode::NOT_FOUND;
            res.headers_mut().insert("content-type", HeaderValue::from_static("application/problem+json"));
            res.headers_mut().insert("x-request-id", HeaderValue::from_static(REQUEST_ID));
            black_box(res)
        })
    });
    for name in Catalog::PROFILES {
        let cat = Catalog::builtin(name).expect("built in");
        g.bench_function(format!("profile/{name}"), |b| {
            b.iter(|| {
                let p = Problem::new(black_box(NotFound)).detail(DETAIL).request_id(REQUEST_ID);
                black_box(cat.render(&p).expect("renders"))
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("render_422_two_fields");
    g.bench_function("rebuff", |b| {
        b.iter(|| {
            let p = Problem::dynamic("validation_failed")
                .field(FieldError::body("/name", "required", "Name is required"))
                .field(FieldError::body("/config/batch_size", "range", "must be greater than 0"))
                .request_id(REQUEST_ID);
            black_box(standard.render(&p).expect("renders"))
        })
    });
    g.finish();
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_404");
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Plain {
        #[serde(rename = "type")]
        type_: String,
        title: String,
        status: u16,
        detail: String,
        code: String,
        request_id: String,
    }
    let body = Catalog::standard()
        .render(&Problem::dynamic("resource_not_found").detail(DETAIL).request_id(REQUEST_ID))
        .expect("renders");
    let headers = body.headers().clone();
    let bytes = body.body().clone();
    g.bench_function("serde_json_struct_baseline", |b| {
        b.iter(|| black_box(serde_json::from_slice::<Plain>(black_box(&bytes)).expect("parses")))
    });
    g.bench_function("http_api_problem", |b| {
        b.iter(|| {
            black_box(
                serde_json::from_slice::<http_api_problem::HttpApiProblem>(black_box(&bytes))
                    .expect("parses"),
            )
        })
    });
    for name in Catalog::PROFILES {
        let res = Catalog::builtin(name)
            .expect("built in")
            .render(&Problem::dynamic("resource_not_found").detail(DETAIL).request_id(REQUEST_ID))
            .expect("renders");
        let (h, b_) = (res.headers().clone(), res.body().clone());
        g.bench_function(format!("rebuff/{name}"), |b| b.iter(|| black_box(parse(404, &h, black_box(&b_)))));
    }
    let html = b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>";
    let mut hh = HeaderMap::new();
    hh.insert("content-type", HeaderValue::from_static("text/html"));
    g.bench_function("rebuff/proxy_html", |b| b.iter(|| black_box(parse(502, &hh, black_box(html)))));
    let _ = headers;
    g.finish();
}

criterion_group!(benches, render, decode);
criterion_main!(benches);
