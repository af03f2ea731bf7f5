//! `/v1/api-keys`: create (the key text is shown once), list, revoke. Needs the `admin` scope.

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use rebuff_axum::auth::{ADMIN_SCOPE, Principal, Subject};
use rebuff_axum::extract::{Json, Path, Query};
use rebuff_axum::idempotency::{IdempotencyRecord, Recorded, ReplayBody, replay_response};
use rebuff_axum::store::{KeyOnce, KeyReplay, StoreError, StoredResponse};
use rebuff_axum::validate::{Valid, Validate, Violations};
use rebuff_axum::{ApiError, Code};
use rebuff_sqlite::{Error as AccountError, KeyInfo, NewKey};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Page, Paging, not_found};
use crate::limits::{self, ALLOWED_IPS_MAX, CIDR_MAX_CHARS, SCOPES, SCOPES_MAX};
use crate::state::AppState;

/// What an idempotent replay of a key creation shows instead of the key's text: the secret
/// is shown once, in the first response, and never kept at rest.
pub(crate) const REDACTED: &str = "[redacted: shown only in the first response]";

/// A new API key.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct NewKeyBody {
    /// Its label (default `api`).
    #[serde(default)]
    #[schema(schema_with = limits::key_name)]
    name: Option<String>,
    /// What it may do.
    #[schema(schema_with = limits::scopes)]
    scopes: Vec<String>,
    /// When it stops working (RFC 3339, in the future).
    #[serde(default)]
    #[schema(schema_with = limits::timestamp)]
    expires_at: Option<String>,
    /// The client networks it works from (empty: any).
    #[serde(default)]
    #[schema(schema_with = limits::allowed_ips)]
    allowed_ips: Vec<String>,
    /// A live key (`rb_live_`), else a test key (`rb_test_`).
    #[serde(default)]
    live: bool,
}

/// An API key as listed: everything but its secret.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApiKey {
    /// Its public id.
    #[schema(schema_with = limits::key_id)]
    id: String,
    /// Its label.
    #[schema(schema_with = limits::text)]
    name: String,
    /// Its visible beginning: `rb_test_` or `rb_live_` and the id.
    #[schema(schema_with = limits::token)]
    prefix: String,
    /// What it may do.
    #[schema(schema_with = limits::scopes)]
    scopes: Vec<String>,
    /// Unix seconds after which it is expired.
    #[schema(minimum = 0, maximum = 9223372036854775807_i64)]
    expires_at: Option<i64>,
    /// Unix seconds at which it was revoked.
    #[schema(minimum = 0, maximum = 9223372036854775807_i64)]
    revoked_at: Option<i64>,
    /// The client networks it works from (empty: any).
    #[schema(schema_with = limits::allowed_ips)]
    allowed_ips: Vec<String>,
    /// A live key.
    live: bool,
    /// Unix seconds of creation.
    #[schema(minimum = 0, maximum = 9223372036854775807_i64)]
    created_at: i64,
    /// Unix seconds of its last use.
    #[schema(minimum = 0, maximum = 9223372036854775807_i64)]
    last_used_at: Option<i64>,
}

/// A key just created: its text is in this response only.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NewApiKey {
    #[serde(flatten)]
    info: ApiKey,
    /// The key's text, shown only here.
    #[schema(schema_with = limits::token)]
    key: String,
}

/// An API key's path id.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct KeyId {
    /// The key's public id.
    #[param(schema_with = limits::key_id)]
    #[allow(dead_code)]
    id: String,
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
        if let Some(name) = &self.name {
            limits::check_text(v, "/name", name);
        }
        if self.scopes.is_empty() {
            v.invalid("/scopes", "At least one scope is required (read, write, admin)");
        }
        v.ensure(self.scopes.len() <= SCOPES_MAX, "/scopes", format!("At most {SCOPES_MAX} scopes"));
        // Past the maximum, one violation says so: 50,000 entries must not make 50,000 more.
        for (i, s) in self.scopes.iter().enumerate().take(SCOPES_MAX) {
            if !SCOPES.contains(&s.as_str()) {
                v.one_of(format!("/scopes/{i}"), SCOPES);
            } else if self.scopes[..i].contains(s) {
                v.invalid(format!("/scopes/{i}"), "Each scope may be given once");
            }
        }
        if let Some(t) = &self.expires_at {
            limits::check_text(v, "/expires_at", t);
            match parse_time(t) {
                None => v.invalid("/expires_at", "expires_at must be an RFC 3339 timestamp"),
                Some(s) if s <= crate::db::now() => {
                    v.invalid("/expires_at", "expires_at must be in the future")
                }
                Some(_) => {}
            }
        }
        v.ensure(
            self.allowed_ips.len() <= ALLOWED_IPS_MAX,
            "/allowed_ips",
            format!("At most {ALLOWED_IPS_MAX} entries"),
        );
        for (i, ip) in self.allowed_ips.iter().enumerate().take(ALLOWED_IPS_MAX) {
            let ok = ip.chars().count() <= CIDR_MAX_CHARS && parse_net(ip).is_some();
            v.ensure(ok, format!("/allowed_ips/{i}"), "Not an IP address or CIDR range");
        }
    }
}

fn view(k: &KeyInfo) -> ApiKey {
    ApiKey {
        id: k.id.clone(),
        name: k.name.clone(),
        prefix: k.prefix(),
        scopes: k.scopes.clone(),
        expires_at: k.expires_at,
        revoked_at: k.revoked_at,
        allowed_ips: k.allowed_ips.iter().map(ToString::to_string).collect(),
        live: k.live,
        created_at: k.created_at,
        last_used_at: k.last_used_at,
    }
}

/// The body that an idempotent retry of a key creation replays: the first response's, with
/// the key's text replaced by [`REDACTED`].
fn redacted(info: &KeyInfo) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&NewApiKey { info: view(info), key: REDACTED.into() })
}

/// A failure of the accounts store: masked, 503 when it is worth retrying.
fn account_error(e: AccountError) -> ApiError {
    match e {
        AccountError::Store(e) => ApiError::from(e),
        other => ApiError::new(Code::DatabaseError).cause(other),
    }
}

/// Create an API key (its text is in this response only).
///
/// With an `Idempotency-Key`, the key and the response a retry replays (redacted: the secret is
/// never stored) are committed together in the accounts store, so a retry gets that response
/// and never creates a second key, whatever became of the idempotency store's record.
#[utoipa::path(post, path = "/v1/api-keys", operation_id = "createApiKey", request_body = NewKeyBody,
    security(("apiKey" = []), ("session" = [])), description = "Needs the `admin` scope.",
    responses((status = 201, description = "Created.", body = NewApiKey)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    principal: Principal,
    record: Option<Extension<IdempotencyRecord>>,
    Valid(body): Valid<NewKeyBody>,
) -> Result<Response, ApiError> {
    let creator = match &principal.subject {
        Subject::Key { id, .. } => state.store().accounts().get_key(&principal.org_id, id).await?,
        // A session never holds `admin`; should one reach here, its key would outlive it.
        Subject::Session { .. } => None,
    };
    let Some(creator) = creator.filter(|k| k.revoked_at.is_none()) else {
        return Err(ApiError::new(Code::Forbidden).detail("API keys are created with an admin API key."));
    };
    let new = NewKey {
        org_id: principal.org_id.to_string(),
        name: body.name.unwrap_or_else(|| "api".into()),
        scopes: body.scopes,
        expires_at: body.expires_at.as_deref().and_then(parse_time),
        allowed_ips: body.allowed_ips.iter().filter_map(|s| parse_net(s)).collect(),
        live: body.live,
    };
    let new = within_creator(&creator, new)?;
    let accounts = state.store().accounts();
    let (info, text, recorded) = match record {
        None => {
            let (info, text) = accounts.create_key(new).await.map_err(account_error)?;
            (info, text, false)
        }
        Some(Extension(record)) => {
            let replay: KeyReplay = Box::new(|info: &KeyInfo| {
                let body = redacted(info).map_err(|e| StoreError::backend(format!("a key's replay: {e}")))?;
                Ok(StoredResponse {
                    status: StatusCode::CREATED.as_u16(),
                    headers: vec![(
                        http::header::CONTENT_TYPE.as_str().to_owned(),
                        "application/json".to_owned(),
                    )],
                    body: body.into(),
                })
            });
            match accounts.create_key_once(new, record, replay).await.map_err(account_error)? {
                KeyOnce::Created { info, text } => (info, text, true),
                KeyOnce::Replay(stored) => return Ok(replay_response(stored)),
                KeyOnce::Mismatch => return Err(ApiError::new(Code::IdempotencyKeyReused)),
            }
        }
    };
    // An idempotent retry replays a stored copy: the copy never holds the secret.
    let replay = ReplayBody::new(redacted(&info).map_err(|e| ApiError::new(Code::InternalError).cause(e))?);
    // The body holds the key's secret: no cache may keep it.
    let no_store = [(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"))];
    let mut res =
        (StatusCode::CREATED, no_store, Json(NewApiKey { info: view(&info), key: text })).into_response();
    res.extensions_mut().insert(replay);
    if recorded {
        res.extensions_mut().insert(Recorded);
    }
    Ok(res)
}

/// Bounds a new key by the key creating it, so that a key can never make one that can do more
/// than itself: its scopes are held by the creator (`admin` implies all), its addresses lie
/// inside the creator's allow-list (none given: the creator's), it expires no later (none
/// given: when the creator does), and a test key makes test keys only.
fn within_creator(creator: &KeyInfo, mut new: NewKey) -> Result<NewKey, ApiError> {
    let refuse = |detail: String| Err(ApiError::new(Code::Forbidden).detail(detail));
    let holds = |s: &str| creator.scopes.iter().any(|c| c == s || c == ADMIN_SCOPE);
    if let Some(s) = new.scopes.iter().find(|s| !holds(s)) {
        return refuse(format!("The scope `{s}` is not held by the key creating this one."));
    }
    if new.live && !creator.live {
        return refuse("A test key cannot create a live key.".into());
    }
    match (creator.expires_at, new.expires_at) {
        (Some(limit), Some(asked)) if asked > limit => {
            return refuse(format!(
                "expires_at must not be later than the expiry of the key creating this one ({}).",
                jiff::Timestamp::from_second(limit).map_or_else(|_| limit.to_string(), |t| t.to_string())
            ));
        }
        (Some(limit), None) => new.expires_at = Some(limit),
        _ => {}
    }
    if !creator.allowed_ips.is_empty() {
        if new.allowed_ips.is_empty() {
            new.allowed_ips.clone_from(&creator.allowed_ips);
        } else if let Some(net) =
            new.allowed_ips.iter().find(|n| !creator.allowed_ips.iter().any(|c| c.contains(*n)))
        {
            return refuse(format!("{net} is outside the addresses allowed for the key creating this one."));
        }
    }
    Ok(new)
}

/// List API keys (secrets are never shown again), oldest first, a page at a time.
///
/// An organisation has few keys, and the accounts' backends list them whole, so the page is
/// cut here.
#[utoipa::path(get, path = "/v1/api-keys", operation_id = "listApiKeys", params(Paging),
    security(("apiKey" = []), ("session" = [])), description = "Needs the `admin` scope.",
    responses((status = 200, description = "Success.", body = Page<ApiKey>), (status = 400, description = "A query parameter is invalid.")))]
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(paging): Query<Paging>,
) -> Result<impl IntoResponse, ApiError> {
    let page = paging.request()?;
    let mut keys = state.store().accounts().list_keys(&principal.org_id).await?;
    keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let keys: Vec<_> = keys
        .into_iter()
        .filter(|k| page.after.as_ref().is_none_or(|(at, id)| (k.created_at, &k.id) > (*at, id)))
        .take(page.limit as usize + 1)
        .collect();
    let page = Page::of(keys, page.limit, |k| (k.created_at, k.id.as_str()));
    Ok(Json(Page {
        data: page.data.iter().map(view).collect::<Vec<_>>(),
        has_more: page.has_more,
        next_cursor: page.next_cursor,
    }))
}

/// Revoke an API key.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", operation_id = "revokeApiKey", params(KeyId),
    security(("apiKey" = []), ("session" = [])), description = "Needs the `admin` scope.",
    responses((status = 204, description = "Revoked; no body."), (status = 400, description = "Not a key id."), (status = 404, description = "No such key in this organisation.")))]
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
        // This instance refuses the key at once; the others when they hear of it, or within
        // their cache's bound.
        state.backends().key_changed().await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(Code::ResourceNotFound, "API key", &id))
    }
}
