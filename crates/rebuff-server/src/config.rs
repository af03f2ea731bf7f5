//! Server configuration.

use std::sync::Arc;
use std::time::Duration;

use rebuff::Catalog;
pub use rebuff_axum::store::Quota;

/// Everything `rebuff serve` can set.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The contract spoken: the standard catalog or one of its profiles.
    pub catalog: Arc<Catalog>,
    /// Show masked causes in bodies. Development only.
    pub debug: bool,
    /// Requests per organisation.
    pub rate_limit: Quota,
    /// When the rate-limit store fails, admit requests unlimited instead of answering 503.
    pub rate_limit_fail_open: bool,
    /// Login attempts per client address and per email.
    pub login_limit: Quota,
    /// Failed API key or session checks per client address.
    pub auth_failure_limit: Quota,
    /// Rows an organisation may generate per calendar month (UTC).
    pub monthly_rows: u64,
    /// Largest request body in bytes.
    pub body_limit: usize,
    /// Longest a handler may run.
    pub request_timeout: Duration,
    /// Longest a client may take to send its body.
    pub body_timeout: Duration,
    /// How long a model takes to train.
    pub training_delay: Duration,
    /// How long a generation job takes.
    pub job_delay: Duration,
    /// How long a login session lasts.
    pub session_ttl: Duration,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` headers name the client (none:
    /// the headers are ignored, and the client is the TCP peer).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Send the session cookie with `Secure` (HTTPS only). `rebuff serve` turns it on unless
    /// it listens on a loopback address; [`Config::new`] leaves it off.
    pub secure_cookies: bool,
    /// Secret for incoming webhook signatures. [`Config::new`] draws a random one that nobody
    /// else knows, so that webhooks are refused until a secret is configured (`rebuff serve`
    /// takes `--webhook-secret` or keeps a generated one in its database): a built-in default
    /// would let anyone sign webhooks for every deployment.
    pub webhook_secret: Vec<u8>,
    /// Oldest webhook timestamp accepted.
    pub webhook_tolerance: Duration,
    /// The longest a key changed (revoked) on another instance may still be accepted by this
    /// one, which keeps verified keys in memory (1 s); `None` reads every key from its store.
    /// The instance that revokes a key refuses it at once either way.
    pub key_cache: Option<Duration>,
    /// Furthest a webhook timestamp may be ahead of this clock.
    pub webhook_future_tolerance: Duration,
    /// How often [`serve`](crate::serve) deletes expired sessions, idempotency records and
    /// rate-limit rows from the databases.
    pub purge_interval: Duration,
    /// Connections served at once; more wait in the kernel's backlog until one closes.
    pub max_connections: usize,
    /// Longest a client may take to send a request head, counted from when the connection
    /// starts waiting for it (also the longest a kept-alive connection may wait for its next
    /// request). Kept by a timer that looks every quarter of the shorter of the two timeouts:
    /// a head is cut off after at least this, and at most half of it more.
    pub header_timeout: Duration,
    /// A connection that moves no byte for this long is closed (within a quarter more), after
    /// the response in flight if there is one.
    pub idle_timeout: Duration,
    /// After a connection's last response, the longest the server reads and discards what the
    /// client still sends before closing (a lingering close, so that a client still sending
    /// an oversized body gets its 413 rather than a reset); `linger_bytes` bounds it too.
    pub linger_time: Duration,
    /// Most bytes read and discarded in a lingering close; 0 closes at once.
    pub linger_bytes: usize,
}

impl Config {
    /// Defaults for a catalog: 60 requests a minute, 100,000 rows a month, 1 MiB bodies.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Config {
            catalog,
            debug: false,
            rate_limit: Quota { limit: 60, period: Duration::from_secs(60) },
            rate_limit_fail_open: false,
            login_limit: Quota { limit: 5, period: Duration::from_secs(60) },
            auth_failure_limit: Quota { limit: 20, period: Duration::from_secs(60) },
            monthly_rows: 100_000,
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(10),
            training_delay: Duration::from_secs(2),
            job_delay: Duration::from_secs(1),
            session_ttl: Duration::from_secs(12 * 3600),
            trusted_proxies: Vec::new(),
            secure_cookies: false,
            webhook_secret: new_webhook_secret().into_bytes(),
            webhook_tolerance: Duration::from_secs(300),
            key_cache: Some(rebuff_axum::store::key_cache::DEFAULT_MAX_STALENESS),
            webhook_future_tolerance: Duration::from_secs(30),
            purge_interval: Duration::from_secs(600),
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
            linger_time: Duration::from_secs(10),
            linger_bytes: 32 * 1024 * 1024,
        }
    }
}

/// A fresh random webhook secret: `whsec_` and 64 hex digits (256 bits from the operating
/// system's generator, through `rand`'s thread-local CSPRNG).
pub fn new_webhook_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("whsec_{hex}")
}

/// Parses `N/PERIOD` (`60/minute`, `10/s`, `1000/hour`, `100/30s`).
///
/// # Errors
/// A message saying what is wrong.
pub fn parse_rate(text: &str) -> Result<Quota, String> {
    let (n, period) =
        text.split_once('/').ok_or_else(|| format!("`{text}`: expected N/PERIOD, e.g. 60/minute"))?;
    let limit: u32 = n.trim().parse().map_err(|_| format!("`{n}`: not a whole number of requests"))?;
    if limit == 0 {
        return Err("the limit must be at least 1".into());
    }
    let period = period.trim();
    let unit_secs = |u: &str| match u {
        "s" | "sec" | "second" => Some(1),
        "m" | "min" | "minute" => Some(60),
        "h" | "hour" => Some(3600),
        "d" | "day" => Some(86_400),
        _ => None,
    };
    let digits = period.bytes().take_while(u8::is_ascii_digit).count();
    let (count, unit) = period.split_at(digits);
    let count: u64 =
        if count.is_empty() { 1 } else { count.parse().map_err(|_| format!("`{period}`: bad period"))? };
    let secs = unit_secs(unit).ok_or_else(|| format!("`{unit}`: unknown unit (s, minute, hour, day)"))?;
    if count == 0 {
        return Err("the period must be longer than zero".into());
    }
    let total = count.checked_mul(secs).ok_or_else(|| format!("`{period}`: the period is too long"))?;
    Ok(Quota { limit, period: Duration::from_secs(total) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("60/minute"), Ok(Quota { limit: 60, period: Duration::from_secs(60) }));
        assert_eq!(parse_rate("5/30s"), Ok(Quota { limit: 5, period: Duration::from_secs(30) }));
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("ten/s").is_err());
        assert!(parse_rate("10/fortnight").is_err());
        assert!(parse_rate("10").is_err());
        assert!(parse_rate("1/999999999999999999day").is_err(), "overflow is an error, not a panic");
    }

    /// Issue 14, finding 1: the webhook secret was the built-in `whsec_rebuff_demo`, so anyone
    /// could sign webhooks for any deployment.
    #[test]
    fn the_webhook_secret_is_never_a_built_in_default() {
        let catalog = Arc::new(Catalog::standard().clone());
        let (a, b) = (Config::new(catalog.clone()), Config::new(catalog));
        assert_ne!(a.webhook_secret, b"whsec_rebuff_demo".to_vec());
        assert_ne!(a.webhook_secret, b.webhook_secret, "each configuration draws its own");
        assert_eq!(a.webhook_secret.len(), "whsec_".len() + 64);
    }
}
