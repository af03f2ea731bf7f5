//! `rebuff render`: one occurrence rendered as the full HTTP response a service would send.

use std::process::ExitCode;

use anyhow::anyhow;
use rebuff_core::{FieldError, Problem, RenderOptions};

use super::{CatalogArgs, find_code, format_response, unknown_code_message};

/// Render an error as the full HTTP response, like `curl -i` shows it.
///
/// Prints the status line, the headers and the pretty-printed body that a service using the
/// profile sends for this occurrence.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example: rebuff render --profile dataxid --code api_key_missing --request-id req_abc123"
)]
pub(crate) struct Args {
    #[command(flatten)]
    catalog: CatalogArgs,
    /// The stable code (or a wire code of the profile).
    #[arg(long, value_name = "CODE")]
    code: String,
    /// The human explanation of this occurrence (replaced by the generic message when masked).
    #[arg(long, value_name = "TEXT")]
    detail: Option<String>,
    /// The parameter at fault.
    #[arg(long, value_name = "NAME")]
    param: Option<String>,
    /// A field error in the body: a JSON Pointer and a message, e.g. `/name=must not be empty`.
    /// Repeat for several fields; the reason is `invalid`.
    #[arg(long = "field", value_name = "POINTER=MESSAGE", value_parser = parse_field)]
    fields: Vec<FieldError>,
    /// The request id (body member and `X-Request-Id` header).
    #[arg(long, value_name = "ID")]
    request_id: Option<String>,
    /// Seconds the client should wait (`Retry-After`).
    #[arg(long, value_name = "SECS")]
    retry_after: Option<u64>,
    /// The internal cause: never sent for a masked code, unless with `--debug`.
    #[arg(long, value_name = "TEXT")]
    cause: Option<String>,
    /// Render in debug mode: a masked error shows its `--cause`. Never in production.
    #[arg(long)]
    debug: bool,
}

/// `POINTER=MESSAGE` into a body field error with reason `invalid`.
fn parse_field(s: &str) -> Result<FieldError, String> {
    let (pointer, message) = s
        .split_once('=')
        .ok_or_else(|| "expected POINTER=MESSAGE (e.g. /name=must not be empty)".to_owned())?;
    if !pointer.starts_with('/') {
        return Err(format!(
            "`{pointer}` is not a JSON Pointer: it must start with '/' (e.g. /config/batch_size)"
        ));
    }
    if message.trim().is_empty() {
        return Err("the message after '=' must not be empty".to_owned());
    }
    Ok(FieldError::body(pointer, "invalid", message))
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let catalog = args.catalog.load_or("rebuff")?;
    let entry = find_code(&catalog, &args.code)
        .map_err(|close| anyhow!(unknown_code_message(&catalog, &args.code, &close)))?
        .entry;
    let mut problem = Problem::dynamic(entry.code.clone());
    problem.detail.clone_from(&args.detail);
    problem.param.clone_from(&args.param);
    problem.fields.clone_from(&args.fields);
    problem.request_id.clone_from(&args.request_id);
    problem.retry_after = args.retry_after;
    problem.cause.clone_from(&args.cause);
    let res = catalog.render_with(&problem, RenderOptions::debug(args.debug))?;
    print!("{}", format_response(&res));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_needs_a_pointer_and_a_message() {
        let f = parse_field("/config/batch_size=must be > 0").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f, FieldError::body("/config/batch_size", "invalid", "must be > 0"));
        assert!(parse_field("name=x").is_err());
        assert!(parse_field("/name").is_err());
        assert!(parse_field("/name=").is_err());
        // Only the first '=' splits: the message may contain more.
        assert_eq!(parse_field("/a=b=c").map(|f| f.message).as_deref(), Ok("b=c"));
    }
}
