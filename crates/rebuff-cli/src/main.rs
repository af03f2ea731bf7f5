//! `rebuff`: check, explain, render and document an HTTP API's error contract, and run the
//! reference API.
//!
//! This file only parses the command line and hands each subcommand to its module in
//! `cmd/`. Exit status: 0 on success, 1 when the thing checked failed (an invalid catalog, a
//! breaking change, an unknown code to explain), 2 for usage problems (wrong arguments, a
//! file that cannot be read or written).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// The server allocates and frees small buffers on every request, from whichever worker
/// thread polls it; mimalloc's per-thread free lists do this with less locking and
/// consolidation than the system allocator (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Check, explain, render and document an HTTP API's error contract.
#[derive(Debug, Parser)]
#[command(name = "rebuff", version, propagate_version = true)]
#[command(after_help = "Exit status: 0 success, 1 the thing checked failed, 2 usage problem.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Lint(cmd::lint::Args),
    Explain(cmd::explain::Args),
    Render(cmd::render::Args),
    Parse(cmd::parse::Args),
    Diff(cmd::diff::Args),
    Docs(cmd::docs::Args),
    Serve(cmd::serve::Args),
    Probe(cmd::probe::Args),
    #[command(subcommand)]
    Keys(cmd::keys::Command),
    #[command(subcommand)]
    Users(cmd::users::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Lint(args) => cmd::lint::run(args),
        Command::Explain(args) => cmd::explain::run(args),
        Command::Render(args) => cmd::render::run(args),
        Command::Parse(args) => cmd::parse::run(args),
        Command::Diff(args) => cmd::diff::run(args),
        Command::Docs(args) => cmd::docs::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Probe(args) => cmd::probe::run(args),
        Command::Keys(command) => cmd::keys::run(command),
        Command::Users(command) => cmd::users::run(command),
    };
    cmd::finish(result)
}
