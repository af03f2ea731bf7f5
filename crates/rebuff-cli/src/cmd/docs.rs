//! `rebuff docs CATALOG --format F`: the error reference, rendered from the catalog.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use rebuff_core::{docs, sdk};

use super::{failure, load_catalog};

/// Render a catalog's error reference.
///
/// Markdown or a self-contained HTML page (one anchor per code), OpenAPI 3.1 components, a
/// JSON export, a Rust table of the codes for `rebuff-client`, or an error module for Python
/// or TypeScript callers.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A catalog file, or a built-in catalog name (`standard`, `arize`, `dataxid`, ...). With
    /// `--format rust-client`, `python` or `typescript`, also a JSON export (a `.json` file
    /// such as an API's `/errors.json`, or `-` for standard input).
    #[arg(value_name = "CATALOG")]
    catalog: String,
    /// What to render.
    #[arg(long, short, value_enum, default_value_t = Format::Md)]
    format: Format,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// Markdown error reference.
    Md,
    /// Self-contained HTML error reference.
    Html,
    /// OpenAPI 3.1 `components` (schemas and one named example per code).
    Openapi,
    /// The catalog as JSON.
    Json,
    /// A Rust source file for `rebuff-client`: a typed enum of the codes and a table from wire
    /// code and status to it.
    RustClient,
    /// A self-contained Python module (standard library only, `mypy --strict` clean): an
    /// exception class per category and code, decoding of any envelope, and retries.
    Python,
    /// A self-contained TypeScript module (`fetch` only, `tsc --strict` clean): an error class
    /// per category and code, decoding of any envelope, and retries.
    Typescript,
}

/// Whether `spec` names a JSON export rather than a catalog.
fn is_json_export(spec: &str) -> bool {
    spec == "-" || Path::new(spec).extension().is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Reads a JSON export from a file or, for `-`, standard input.
fn read_export(spec: &str) -> anyhow::Result<serde_json::Value> {
    let text = if spec == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(spec).with_context(|| format!("cannot read {spec}"))?
    };
    serde_json::from_str(&text).map_err(|e| failure(format!("{spec}: not JSON: {e}")))
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if is_json_export(&args.catalog) {
        let at = |e: &dyn std::fmt::Display| failure(format!("{}: {e}", args.catalog));
        let text = match args.format {
            Format::RustClient => docs::rust_client_json(&read_export(&args.catalog)?).map_err(|e| at(&e))?,
            Format::Python => sdk::python_json(&read_export(&args.catalog)?).map_err(|e| at(&e))?,
            Format::Typescript => sdk::typescript_json(&read_export(&args.catalog)?).map_err(|e| at(&e))?,
            _ => {
                return Err(anyhow::anyhow!(
                    "a JSON export is accepted only with `--format rust-client`, `python` or `typescript`; give the catalog file for other formats"
                ));
            }
        };
        return write(args, text);
    }
    let catalog = load_catalog(&args.catalog)?;
    let text = match args.format {
        Format::Md => docs::markdown(&catalog),
        Format::Html => docs::html(&catalog),
        Format::Openapi => serde_json::to_string_pretty(&docs::openapi_components(&catalog))?,
        Format::Json => serde_json::to_string_pretty(&docs::json(&catalog))?,
        Format::RustClient => docs::rust_client(&catalog),
        Format::Python => sdk::python(&catalog).map_err(|e| failure(e.to_string()))?,
        Format::Typescript => sdk::typescript(&catalog).map_err(|e| failure(e.to_string()))?,
    };
    write(args, text)
}

fn write(args: &Args, mut text: String) -> anyhow::Result<ExitCode> {
    if !text.ends_with('\n') {
        text.push('\n');
    }
    match &args.out {
        None => print!("{text}"),
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {} ({} bytes)", path.display(), text.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}
