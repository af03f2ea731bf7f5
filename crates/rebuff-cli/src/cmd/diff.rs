//! `rebuff diff OLD NEW`: the changes between two versions of a catalog; breaking ones are
//! marked, and the exit status says whether there is one.

use std::process::ExitCode;

use rebuff_core::diff::diff;

use super::load_catalog;

/// List the changes between two versions of a catalog.
///
/// One change per line. Breaking changes (a removed code; a changed status, category or wire
/// code; a stricter retry class) are marked BREAKING and make the exit status 1.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The published catalog (a file or a built-in name).
    #[arg(value_name = "OLD")]
    old: String,
    /// The new version (a file or a built-in name).
    #[arg(value_name = "NEW")]
    new: String,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let old = load_catalog(&args.old)?;
    let new = load_catalog(&args.new)?;
    let changes = diff(&old, &new);
    if changes.is_empty() {
        println!("no changes");
        return Ok(ExitCode::SUCCESS);
    }
    for c in &changes {
        let mark = if c.is_breaking() { "BREAKING" } else { "        " };
        println!("{mark}  {c}");
    }
    let breaking = changes.iter().filter(|c| c.is_breaking()).count();
    println!("{} changes, {breaking} breaking", changes.len());
    Ok(if breaking > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
