//! `rebuff explain CODE`: everything a catalog says about one code, with an example response.

use std::process::ExitCode;

use rebuff_core::docs;

use super::{CatalogArgs, failure, find_code, format_response, unknown_code_message};

/// Explain one error code, with an example response.
///
/// Prints the code's status, category, title, when it happens, how to fix it, whether to
/// retry, masking, type URI and wire code, then the response the profile sends for it. CODE is
/// the stable code or the code as the profile spells it on the wire. The exit status is 1 when
/// the catalog has no such code (close matches are listed).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The stable code (`resource_not_found`) or a wire code of the profile (`RESOURCE_NOT_FOUND`).
    #[arg(value_name = "CODE")]
    code: String,
    #[command(flatten)]
    catalog: CatalogArgs,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let catalog = args.catalog.load_or("rebuff")?;
    let found = find_code(&catalog, &args.code)
        .map_err(|close| failure(unknown_code_message(&catalog, &args.code, &close)))?;
    let e = found.entry;

    let mut out = String::new();
    let mut line = |label: &str, value: &str| out.push_str(&format!("{label:<14}{value}\n"));
    line("code:", &e.code);
    line("catalog:", &format!("{} (dialect {})", catalog.name(), catalog.dialect()));
    line("status:", &format!("{} {}", e.status.as_u16(), e.status.canonical_reason().unwrap_or("")));
    line("category:", &e.category);
    line("title:", &e.title);
    line("when:", &e.when);
    line("fix:", &e.fix);
    line("retry:", &format!("{} - {}", e.retry, e.retry.describe()));
    line("masked:", if e.masked { "yes: the cause is never sent, only the generic message" } else { "no" });
    line("type URI:", &e.type_uri);
    line("wire code:", e.wire_code.as_deref().unwrap_or("(none: no code member is sent)"));
    if let Some(target) = &e.presented_as {
        line("presented as:", &format!("`{target}`: this profile answers it with that code's response"));
    }
    if let Some(wire) = e.wire_code.as_deref() {
        let others: Vec<&str> =
            catalog.by_wire_code(wire).filter(|o| o.code != e.code).map(|o| o.code.as_str()).collect();
        if !others.is_empty() {
            let note = if found.via_wire.is_some() { "; pass a stable code to pick another" } else { "" };
            line("shared with:", &format!("{} (same wire code `{wire}`){note}", others.join(", ")));
        }
    }

    // The same occurrence the error reference shows, so the two never disagree.
    let res = catalog.render(&docs::example_problem(e))?;
    out.push_str("\nExample response:\n");
    out.push_str(&format_response(&res));
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
