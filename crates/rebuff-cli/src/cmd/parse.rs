//! `rebuff parse`: decode an error response body of any envelope into one normalized value.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::CatalogArgs;

/// Parse an error response body into one normalized value, printed as JSON.
///
/// The body may be in any of the six envelopes, plain RFC 9457, or whatever a proxy sent (an
/// HTML page, nothing, truncated JSON). With `--profile` or `--catalog`, the output also has
/// `stable_code`: the catalog code the response stands for, or null.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example: curl -s https://api.example.com/v1/x | rebuff parse --status 404 --profile arize"
)]
pub(crate) struct Args {
    /// The HTTP status of the response. Without it, 400 is assumed.
    #[arg(long, short, value_name = "N", default_value_t = 400, value_parser = clap::value_parser!(u16).range(100..=599))]
    status: u16,
    /// A response header, `Name: value` (repeatable), e.g. `Content-Type: application/problem+json`.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<Header>,
    #[command(flatten)]
    catalog: CatalogArgs,
    /// The body file; `-` or nothing reads standard input.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
}

/// One `--header`.
#[derive(Debug, Clone)]
struct Header(HeaderName, HeaderValue);

fn parse_header(s: &str) -> Result<Header, String> {
    let (name, value) = s.split_once(':').ok_or_else(|| "expected `Name: value`".to_owned())?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("`{}` is not a valid header name", name.trim()))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("the value of `{name}` is not a valid header value"))?;
    Ok(Header(name, value))
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let body = match args.file.as_deref() {
        None => read_stdin()?,
        Some(p) if p.as_os_str() == "-" => read_stdin()?,
        Some(p) => std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
    };
    let mut headers = HeaderMap::new();
    for Header(name, value) in &args.headers {
        headers.append(name.clone(), value.clone());
    }
    note_status_mismatch(args.status, &body);

    let catalog = args.catalog.load(None)?;
    let value = match &catalog {
        None => serde_json::to_value(rebuff_core::parse(args.status, &headers, &body))?,
        Some(catalog) => {
            let (parsed, entry) = rebuff_core::parse_for(catalog, args.status, &headers, &body);
            let mut value = serde_json::to_value(parsed)?;
            if let Some(obj) = value.as_object_mut() {
                obj.insert("stable_code".to_owned(), entry.map(|e| e.code.clone()).into());
            }
            value
        }
    };
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(ExitCode::SUCCESS)
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    std::io::stdin().read_to_end(&mut body).context("cannot read standard input")?;
    Ok(body)
}

/// A body whose `status` member disagrees with the status used is most often a forgotten
/// `--status`; say so instead of silently identifying the wrong code.
fn note_status_mismatch(status: u16, body: &[u8]) {
    let in_body = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("status").and_then(serde_json::Value::as_u64));
    if let Some(b) = in_body.filter(|&b| b != u64::from(status)) {
        eprintln!(
            "note: parsing as status {status}, but the body says {b}; pass --status {b} if that is the real one"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_needs_name_and_value() {
        let h = parse_header("Content-Type: application/problem+json").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.0, http::header::CONTENT_TYPE);
        assert_eq!(h.1, "application/problem+json");
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
        assert!(parse_header("X-Ok: bad\nvalue").is_err());
    }
}
