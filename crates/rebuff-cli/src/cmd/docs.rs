//! `rebuff docs CATALOG --format F`: the error reference, rendered from the catalog.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use rebuff_core::docs;

use super::load_catalog;

/// Render a catalog's error reference.
///
/// Markdown or a self-contained HTML page (one anchor per code), OpenAPI 3.1 components, or
/// a JSON export.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A catalog file, or a built-in catalog name (`standard`, `arize`, `dataxid`, ...).
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
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let catalog = load_catalog(&args.catalog)?;
    let mut text = match args.format {
        Format::Md => docs::markdown(&catalog),
        Format::Html => docs::html(&catalog),
        Format::Openapi => serde_json::to_string_pretty(&docs::openapi_components(&catalog))?,
        Format::Json => serde_json::to_string_pretty(&docs::json(&catalog))?,
    };
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
