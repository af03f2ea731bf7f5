//! `rebuff probe URL`: checks a live API's error contract from outside.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::builder::{PossibleValue, PossibleValuesParser};
use rebuff_core::Catalog;
use rebuff_probe::{Event, Format};

/// Provoke errors from a live API and check its error contract (status, envelope, media
/// type, request id, required headers, no leaks).
///
/// Exit status: 0 everything conforms, 1 something does not, 2 the target could not be
/// reached, a usage problem, or the API's rate limit stopped the probe before the end.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The API's base URL (http://host:port), or a collection URL when there is no OpenAPI
    /// document. Only this host is ever contacted.
    url: String,
    /// An API key, sent where the OpenAPI document's security scheme says (a header, the
    /// query, a cookie, `Bearer`, or `Basic` for `user:password`), else as
    /// `Authorization: Bearer KEY`; without one, provocations behind authentication are skipped.
    #[arg(long, env = "REBUFF_PROBE_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Send the key as it is in this header (`X-API-Key`), whatever the document says.
    #[arg(long, value_name = "NAME")]
    auth_header: Option<String>,
    /// Require a feature the API may not offer: each one missing is a finding (else it is
    /// reported as "not offered"). Repeat for several.
    #[arg(long, value_name = "FEATURE", value_parser = ["idempotency", "rate-limit", "request-id"])]
    expect: Vec<String>,
    /// Trust this PEM certificate (a private CA) for https://, beside the webpki roots.
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// The API's OpenAPI document (JSON): a file, or a URL on the same host as URL.
    #[arg(long, value_name = "PATH_OR_URL")]
    openapi: Option<String>,
    /// Require every error in this profile's dialect (else: in the dialect most errors use).
    #[arg(long, short, value_name = "PROFILE", value_parser = profile_parser())]
    profile: Option<String>,
    /// Report format.
    #[arg(long, value_enum, default_value = "text")]
    format: ReportFormat,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The most requests to send, everything included.
    #[arg(long, value_name = "N", default_value_t = 60)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max_requests: u32,
    /// Seconds one request may take.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=600))]
    timeout: u64,
    /// Seconds the probe may wait in all when the API rate-limits it (429 with Retry-After,
    /// or a spent RateLimit); past that it stops and says so.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    #[arg(value_parser = clap::value_parser!(u64).range(0..=3600))]
    max_wait: u64,
    /// Also send requests past the rate limit until a 429 (within --max-requests).
    #[arg(long)]
    burst: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ReportFormat {
    /// A table and the findings, with progress on standard error.
    Text,
    /// The whole report as JSON.
    Json,
    /// JUnit XML, one test case per provocation and check.
    Junit,
    /// Markdown for a pull request: verdict, grouped findings, features, coverage.
    Md,
}

fn profile_parser() -> PossibleValuesParser {
    PossibleValuesParser::new(Catalog::PROFILES.map(|p| {
        let v = PossibleValue::new(p);
        if p == "rebuff" { v.alias("standard") } else { v }
    }))
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut config = rebuff_probe::Config::new(args.url.clone());
    config.key = args.key.clone();
    config.auth_header = args.auth_header.clone();
    config.expect = args.expect.iter().filter_map(|f| rebuff_probe::Feature::from_name(f)).collect();
    config.max_wait = Duration::from_secs(args.max_wait);
    if let Some(path) = &args.cacert {
        let pem = std::fs::read(path).with_context(|| format!("cannot read --cacert {}", path.display()))?;
        config.root_certificates.push(pem);
    }
    config.openapi = args.openapi.clone();
    config.profile = args.profile.as_deref().map(|p| if p == "standard" { "rebuff" } else { p }.to_owned());
    config.max_requests = usize::try_from(args.max_requests).unwrap_or(usize::MAX);
    config.timeout = Duration::from_secs(args.timeout);
    config.burst = args.burst;
    let format = match args.format {
        ReportFormat::Text => Format::Text,
        ReportFormat::Json => Format::Json,
        ReportFormat::Junit => Format::Junit,
        ReportFormat::Md => Format::Markdown,
    };
    let progress = matches!(args.format, ReportFormat::Text);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let report = runtime
        .block_on(rebuff_probe::run_with(&config, |event| {
            if progress {
                show(&event);
            }
        }))
        // Unreachable targets and usage problems both exit 2.
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let text = report.render(format);
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("{}; report in {}", report.summary(), path.display());
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes()).context("writing the report")?;
            stdout.flush().context("writing the report")?;
        }
    }
    // Stopped by the API's rate limit with nothing found: not a verdict either way.
    Ok(match (report.conforms(), &report.stopped) {
        (false, _) => ExitCode::from(1),
        (true, Some(why)) => {
            eprintln!("the probe did not finish: {why}");
            ExitCode::from(2)
        }
        (true, None) => ExitCode::SUCCESS,
    })
}

/// One line of progress on standard error.
fn show(event: &Event<'_>) {
    match event {
        Event::Note(text) => eprintln!("note: {text}"),
        Event::Exchange { index, total, exchange, .. } => {
            let answer = match exchange.status {
                Some(s) => s.to_string(),
                None => "-".to_owned(),
            };
            eprintln!(
                "[{index:>3}/{total}] {:<22} {} {} -> {answer} {}",
                exchange.provocation.as_str(),
                exchange.method,
                exchange.path,
                exchange.verdict()
            );
        }
        _ => {}
    }
}
