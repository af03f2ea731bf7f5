//! `/v1/api-keys`: create (the key text is shown once), list, revoke. Needs the `admin` scope.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use ipnet::IpNet;
use rebuff_axum::auth::Principal;
use rebuff_axum::extract::{Json, Path};
use rebuff_axum::validate::{Valid, Validate, Violations};
use rebuff_axum::{ApiError, Code};
use rebuff_sqlite::{KeyInfo, NewKey};
use serde::Deserialize;

use super::{Page, not_found};
use crate::state::AppState;

const SCOPES: &[&str] = &["read", "write", "admin"];

#[derive(Debug, Deserialize)]
pub(crate) struct NewKeyBody {
    #[serde(default)]
    name: Option<String>,
    scopes: Vec<String>,
    /// RFC 3339.
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    allowed_ips: Vec<String>,
    #[serde(default)]
    live: bool,
}

/// Parses an address or a CIDR range (an address alone is a /32 or /128).
pub fn parse_net(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>().ok().or_else(|| text.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

/// Parses an RFC 3339 timestamp to Unix seconds.
pub fn parse_time(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

impl Validate for NewKeyBody {
    fn validate(&self, v: &mut Violations) {
        if self.scopes.is_empty() {
            v.invalid("/scopes", "At least one scope is required (read, write, admin)");
        }
        for (i, s) in self.scopes.iter().enumerate() {
            if !SCOPES.contains(&s.as_str()) {
                v.one_of(format!("/scopes/{i}"), SCOPES);
            }
        }
        if let Some(t) = &self.expires_at {
            match parse_time(t) {
                None => v.invalid("/expires_at", "expires_at must be an RFC 3339 timestamp"),
                Some(s) if s <= crate::db::now() => {
                    v.invalid("/expires_at", "expires_at must be in the future")
                }
                Some(_) => {}
            }
        }
        for (i, ip) in self.allowed_ips.iter().enumerate() {
            v.ensure(parse_net(ip).is_some(), format!("/allowed_ips/{i}"), "Not an IP address or CIDR range");
        }
    }
}

fn view(k: &KeyInfo) -> serde_json::Value {
    serde_json::json!({
        "id": k.id,
        "name": k.name,
        "prefix": k.prefix(),
        "scopes": k.scopes,
        "expires_at": k.expires_at,
        "revoked_at": k.revoked_at,
        "allowed_ips": k.allowed_ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "live": k.live,
        "created_at": k.created_at,
        "last_used_at": k.last_used_at,
    })
}

pub(crate) async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Valid(body): Valid<NewKeyBody>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewKey {
        org_id: principal.org_id,
        name: body.name.unwrap_or_else(|| "api".into()),
        scopes: body.scopes,
        expires_at: body.expires_at.as_deref().and_then(parse_time),
        allowed_ips: body.allowed_ips.iter().filter_map(|s| parse_net(s)).collect(),
        live: body.live,
    };
    let (info, text) = state
        .store()
        .accounts()
        .create_key(new)
        .await
        .map_err(|e| ApiError::new(Code::DatabaseError).cause(e))?;
    let mut out = view(&info);
    out["key"] = serde_json::Value::String(text);
    Ok((StatusCode::CREATED, Json(out)))
}

pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<impl IntoResponse, ApiError> {
    let keys = state.store().accounts().list_keys(&principal.org_id).await?;
    Ok(Json(Page { data: keys.iter().map(view).collect::<Vec<_>>() }))
}

pub(crate) async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let well_formed =
        id.len() == rebuff_axum::auth::key::ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric());
    if !well_formed {
        let mut err =
            ApiError::new(Code::InvalidId).detail("Not a valid API key ID: expected 12 letters or digits.");
        err.problem_mut().param = Some("id".into());
        return Err(err);
    }
    if state.store().accounts().revoke_key(&principal.org_id, &id).await? {
        // This instance refuses the key at once; others within the cache's bound.
        if let Some(cache) = &state.backends().key_cache {
            cache.invalidate();
        }
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(Code::ResourceNotFound, "API key", &id))
    }
}
