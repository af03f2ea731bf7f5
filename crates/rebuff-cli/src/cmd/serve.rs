//! `rebuff serve`: the reference API.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use rebuff_server::config::Quota;
use rebuff_server::{AppState, Config};

use super::CatalogArgs;

/// Run the reference API (SQLite on disk, created and migrated on first start).
///
/// The catalog (`--profile`, `--catalog`) must have every code the API answers with: a
/// profile of the standard catalog, or a catalog that `extends = "standard"`. Otherwise the
/// server does not start, and the message names the missing codes (exit status 1).
///
/// Several instances act as one when they share `--redis` (rate limits, quotas, idempotency
/// records) and `--postgres` (organisations, users, API keys, sessions; also limits, quotas and
/// idempotency when there is no Redis).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on.
    #[arg(long, env = "REBUFF_ADDR", default_value = "127.0.0.1:8080")]
    addr: String,
    /// SQLite database file.
    #[arg(long, env = "REBUFF_DB", default_value = "./rebuff.db")]
    db: PathBuf,
    #[command(flatten)]
    catalog: CatalogArgs,
    /// Show the internal cause of masked errors in bodies (development only).
    #[arg(long, env = "REBUFF_DEBUG")]
    debug: bool,
    /// Requests per organisation, as N/PERIOD (60/minute, 10/s, 1000/hour).
    #[arg(long, env = "REBUFF_RATE_LIMIT", default_value = "60/minute", value_parser = parse_rate)]
    rate_limit: Quota,
    /// Failed API key or session checks per client address, as N/PERIOD; past it, 429.
    #[arg(long, env = "REBUFF_AUTH_FAILURE_LIMIT", default_value = "20/minute", value_parser = parse_rate)]
    auth_failure_limit: Quota,
    /// Rows an organisation may generate per month.
    #[arg(long, env = "REBUFF_MONTHLY_ROWS", default_value_t = 100_000)]
    monthly_rows: u64,
    /// Largest request body, in bytes.
    #[arg(long, env = "REBUFF_BODY_LIMIT", default_value_t = 1024 * 1024)]
    body_limit: usize,
    /// Seconds a model takes to train.
    #[arg(long, default_value_t = 2)]
    training_seconds: u64,
    /// Redis for rate limits, quotas and idempotency records (redis://host:port/db).
    #[arg(long, env = "REBUFF_REDIS_URL", value_name = "URL")]
    redis: Option<String>,
    /// PostgreSQL for organisations, users, API keys and sessions
    /// (postgres://user@host:port/database).
    #[arg(long, env = "REBUFF_POSTGRES_URL", value_name = "URL")]
    postgres: Option<String>,
    /// When the rate-limit store is unreachable, admit requests unlimited instead of
    /// answering 503.
    #[arg(long, env = "REBUFF_RATE_LIMIT_FAIL_OPEN")]
    rate_limit_fail_open: bool,
    /// Milliseconds a key revoked on another instance may still be accepted by this one,
    /// which keeps verified keys in memory; 0 reads the key store's change counter on
    /// every request.
    #[arg(long, env = "REBUFF_KEY_CACHE_MS", default_value_t = 1000, value_name = "MS")]
    key_cache_ms: u64,
    /// Secret that incoming webhooks are signed with. Without it, one is generated on first
    /// start, kept in the database and printed once.
    #[arg(long, env = "REBUFF_WEBHOOK_SECRET", value_name = "SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// Send the session cookie with `Secure` (browsers then send it over HTTPS only). By
    /// default on, unless the server listens on a loopback address.
    #[arg(long, env = "REBUFF_SECURE_COOKIES", value_name = "BOOL")]
    secure_cookies: Option<bool>,
    /// A reverse proxy (address or CIDR range) whose Forwarded / X-Forwarded-For headers name
    /// the client; repeat it, or separate with commas. Without one the headers are ignored.
    #[arg(long = "trusted-proxy", env = "REBUFF_TRUSTED_PROXIES", value_name = "CIDR", value_delimiter = ',', value_parser = parse_net)]
    trusted_proxies: Vec<rebuff_server::IpNet>,
    /// Connections served at once; more wait until one closes.
    #[arg(long, env = "REBUFF_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Seconds a client may take to send a request's headers (also the longest a kept-alive
    /// connection waits for its next request).
    #[arg(long, env = "REBUFF_HEADER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout: u64,
    /// Seconds a connection may send and receive nothing before it is closed.
    #[arg(long, env = "REBUFF_IDLE_TIMEOUT", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,
}

fn parse_net(text: &str) -> Result<rebuff_server::IpNet, String> {
    rebuff_server::parse_net(text.trim()).ok_or_else(|| format!("`{text}`: not an IP address or CIDR range"))
}

fn parse_rate(text: &str) -> Result<Quota, String> {
    rebuff_server::config::parse_rate(text)
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        // The log goes to standard error: standard output carries what is shown once (the
        // admin key, the webhook secret), which a log collector must not keep.
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal, never in a log file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn")),
        )
        .init();
    let catalog = args.catalog.load_or("rebuff")?;
    // Before anything starts: a catalog without the codes the API answers with would make
    // the server answer those errors with 500.
    rebuff_server::check_catalog(&catalog).map_err(|e| super::failure(format!("cannot serve: {e}")))?;
    let mut config = Config::new(Arc::new(catalog));
    config.debug = args.debug;
    config.rate_limit = args.rate_limit;
    config.rate_limit_fail_open = args.rate_limit_fail_open;
    config.key_cache = Some(std::time::Duration::from_millis(args.key_cache_ms));
    config.auth_failure_limit = args.auth_failure_limit;
    config.monthly_rows = args.monthly_rows;
    config.body_limit = args.body_limit;
    config.training_delay = std::time::Duration::from_secs(args.training_seconds);
    config.max_connections = usize::try_from(args.max_connections).unwrap_or(usize::MAX);
    config.header_timeout = std::time::Duration::from_secs(args.header_timeout);
    config.idle_timeout = std::time::Duration::from_secs(args.idle_timeout);
    config.trusted_proxies.clone_from(&args.trusted_proxies);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        // First, so that a taken port fails before anything is created or printed.
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        // Plain HTTP is expected only on loopback (development, or behind a local proxy).
        config.secure_cookies = args.secure_cookies.unwrap_or(!addr.ip().is_loopback());
        let redis = match &args.redis {
            Some(url) => Some(
                rebuff_server::RedisStore::connect(url.as_str()).await.map_err(|e| anyhow::anyhow!("{e}"))?,
            ),
            None => None,
        };
        let postgres = match &args.postgres {
            Some(url) => Some(
                rebuff_server::PgStore::connect(url.as_str()).await.map_err(|e| anyhow::anyhow!("{e}"))?,
            ),
            None => None,
        };
        let (store, demo) = rebuff_server::open_with(&args.db, postgres.as_ref())
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the database {}: {e}", args.db.display()))?;
        if let Some(demo) = demo {
            let place =
                if postgres.is_some() { "PostgreSQL".to_owned() } else { args.db.display().to_string() };
            println!("Created organisation `{}` in {place}.", demo.org);
            println!("Its admin API key (shown once, store it now):\n\n    {}\n", demo.key);
        }
        match &args.webhook_secret {
            Some(secret) if secret.is_empty() => anyhow::bail!("--webhook-secret must not be empty"),
            Some(secret) => config.webhook_secret = secret.clone().into_bytes(),
            None => {
                let (secret, created) = rebuff_server::stored_webhook_secret(&store)
                    .await
                    .map_err(|e| anyhow::anyhow!("reading the webhook secret: {e}"))?;
                if created {
                    println!("Webhook signing secret (shown once, store it now):\n\n    {secret}\n");
                }
                config.webhook_secret = secret.into_bytes();
            }
        }
        let profile = config.catalog.name().to_owned();
        let mut builder = AppState::builder(config, store);
        if let Some(redis) = redis {
            builder = builder.redis(redis);
        }
        if let Some(postgres) = postgres {
            builder = builder.postgres(postgres);
        }
        let state = builder.build().await.map_err(|e| anyhow::anyhow!("migrating: {e}"))?;
        println!("State: {}", state.backends().placement());
        println!("rebuff reference API ({profile} profile) on http://{addr}  (errors: http://{addr}/errors)");
        if args.debug {
            println!("--debug: masked errors show their cause in bodies. Never use this in production.");
        }
        rebuff_server::serve(listener, state, rebuff_server::shutdown_signal()).await.context("serving")?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
