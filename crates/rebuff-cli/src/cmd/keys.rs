//! `rebuff keys create|list|revoke`: API keys in a server's database (SQLite, or PostgreSQL
//! with `--postgres`). Secrets are printed once, at creation, and never again. `revoke --redis`
//! also announces the revocation to servers that share that Redis.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use rebuff_server::IpNet;
use rebuff_sqlite::{KeyInfo, NewKey};

/// Manage API keys.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Create a key and print it (the only time it is shown).
    Create(CreateArgs),
    /// List an organisation's keys (never their secrets).
    List(ListArgs),
    /// Revoke a key by its id.
    Revoke(RevokeArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct Db {
    #[command(flatten)]
    accounts: super::AccountsArgs,
    /// The organisation (created if it does not exist, for `create`).
    #[arg(long)]
    org: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    db: Db,
    /// A scope to grant (read, write, admin); repeat for several. Default: read.
    #[arg(long = "scope", value_parser = ["read", "write", "admin"])]
    scopes: Vec<String>,
    /// When the key expires (RFC 3339, e.g. 2027-01-31T00:00:00Z).
    #[arg(long, value_parser = parse_time)]
    expires_at: Option<i64>,
    /// An address or CIDR range allowed to use the key; repeat for several. Default: any.
    #[arg(long = "allow-ip", value_parser = parse_net)]
    allow_ips: Vec<IpNet>,
    /// Make a live key (`rb_live_`) instead of a test key.
    #[arg(long)]
    live: bool,
    /// A label.
    #[arg(long, default_value = "cli")]
    name: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    db: Db,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RevokeArgs {
    #[command(flatten)]
    db: Db,
    /// The key's id (the 12 characters after `rb_test_` / `rb_live_`).
    id: String,
    /// The Redis the servers share (`rebuff serve --redis`): the revocation is announced there,
    /// so that servers keeping their keys in the SQLite file refuse the key at once rather
    /// than within their key cache's bound (`--key-cache-ms`, 1 s by default).
    #[arg(long, env = "REBUFF_REDIS_URL", value_name = "URL")]
    redis: Option<String>,
}

fn parse_time(text: &str) -> Result<i64, String> {
    rebuff_server::parse_time(text).ok_or_else(|| format!("`{text}` is not an RFC 3339 timestamp"))
}

fn parse_net(text: &str) -> Result<IpNet, String> {
    rebuff_server::parse_net(text).ok_or_else(|| format!("`{text}` is not an IP address or CIDR range"))
}

fn view(k: &KeyInfo) -> serde_json::Value {
    serde_json::json!({
        "id": k.id, "prefix": k.prefix(), "name": k.name, "scopes": k.scopes,
        "expires_at": k.expires_at, "revoked_at": k.revoked_at,
        "allowed_ips": k.allowed_ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "live": k.live, "created_at": k.created_at, "last_used_at": k.last_used_at,
    })
}

fn now_seconds() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// `keys list` as aligned columns under a header. The id stands alone in its column because it
/// is what `keys revoke` takes; the prefix ends in `_…` so it never reads as a whole key.
fn table(keys: &[KeyInfo], now: i64) -> String {
    let time = |t: Option<i64>| {
        t.and_then(|s| jiff::Timestamp::from_second(s).ok()).map_or_else(|| "-".to_owned(), |t| t.to_string())
    };
    let mut rows = vec![["ID", "PREFIX", "STATE", "SCOPES", "EXPIRES", "NAME"].map(str::to_owned)];
    for k in keys {
        let state = match (k.revoked_at, k.expires_at) {
            (Some(_), _) => "revoked",
            (None, Some(at)) if at <= now => "expired",
            _ => "active",
        };
        let name = if k.name.is_empty() { "-".to_owned() } else { k.name.clone() };
        rows.push([
            k.id.clone(),
            format!("{}_…", k.prefix()),
            state.to_owned(),
            k.scopes.join(","),
            time(k.expires_at),
            name,
        ]);
    }
    let mut widths = [0; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', w - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub(crate) fn run(command: &Command) -> anyhow::Result<ExitCode> {
    let rt =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    rt.block_on(async {
        match command {
            Command::Create(a) => {
                let store = a.db.accounts.open().await?;
                let org = store.get_or_create_org(&a.db.org).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                let scopes = if a.scopes.is_empty() { vec!["read".to_owned()] } else { a.scopes.clone() };
                let (info, text) = store
                    .create_key(NewKey {
                        org_id: org.id,
                        name: a.name.clone(),
                        scopes,
                        expires_at: a.expires_at,
                        allowed_ips: a.allow_ips.clone(),
                        live: a.live,
                    })
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let mut out = std::io::stdout().lock();
                if a.json {
                    let mut v = view(&info);
                    v["key"] = serde_json::Value::String(text);
                    writeln!(out, "{v:#}")?;
                } else {
                    writeln!(out, "{text}")?;
                    writeln!(
                        out,
                        "(id {}, scopes {}; shown once, store it now)",
                        info.id,
                        info.scopes.join(" ")
                    )?;
                }
            }
            Command::List(a) => {
                let store = a.db.accounts.open().await?;
                let Some(org) = store.find_org(&a.db.org).await.map_err(|e| anyhow::anyhow!("{e}"))? else {
                    return Err(super::failure(format!("no organisation named `{}`", a.db.org)));
                };
                let keys = store.list_keys(&org.id).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                let mut out = std::io::stdout().lock();
                if a.json {
                    writeln!(out, "{:#}", serde_json::Value::Array(keys.iter().map(view).collect()))?;
                } else {
                    write!(out, "{}", table(&keys, now_seconds()))?;
                }
            }
            Command::Revoke(a) => {
                let store = a.db.accounts.open().await?;
                let Some(org) = store.find_org(&a.db.org).await.map_err(|e| anyhow::anyhow!("{e}"))? else {
                    return Err(super::failure(format!("no organisation named `{}`", a.db.org)));
                };
                if !store.revoke_key(&org.id, &a.id).await.map_err(|e| anyhow::anyhow!("{e}"))? {
                    return Err(super::failure(format!("no key `{}` in `{}`", a.id, a.db.org)));
                }
                println!("revoked {}", a.id);
                if let Some(url) = &a.redis {
                    // The revocation stands either way: the servers' polling sees it within
                    // their bound.
                    let announced = match rebuff_server::RedisStore::connect(url.as_str()).await {
                        Ok(redis) => redis.announce_key_change().await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = announced {
                        eprintln!(
                            "the revocation was not announced over Redis ({e}); servers refuse the key \
                             within their key cache's bound"
                        );
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
