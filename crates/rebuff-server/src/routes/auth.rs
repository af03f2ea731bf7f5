//! `/v1/auth/login` and `/v1/auth/logout`: cookie sessions with a CSRF token.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use rebuff_axum::auth::{Principal, SESSION_COOKIE, Subject};
use rebuff_axum::client_ip::ClientIp;
use rebuff_axum::extract::Json;
use rebuff_axum::ratelimit::{now_nanos, write_headers};
use rebuff_axum::validate::{Valid, Validate, Violations};
use rebuff_axum::{ApiError, Code};
use rebuff_sqlite::LoginOutcome;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::limits::{self, EMAIL_MAX_CHARS, PASSWORD_MAX_CHARS};
use crate::state::AppState;

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct Login {
    /// The user's email address.
    #[schema(schema_with = limits::email)]
    email: String,
    /// The user's password.
    #[schema(schema_with = limits::password)]
    password: String,
}

impl Validate for Login {
    fn validate(&self, v: &mut Violations) {
        v.ensure(
            self.email.contains('@') && self.email.chars().count() <= EMAIL_MAX_CHARS,
            "/email",
            "value is not a valid email address",
        );
        v.ensure(!self.password.is_empty(), "/password", "Password must not be empty");
        v.ensure(
            self.password.chars().count() <= PASSWORD_MAX_CHARS,
            "/password",
            format!("Password must be at most {PASSWORD_MAX_CHARS} characters"),
        );
    }
}

/// A session just opened.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Session {
    /// Who signed in.
    user: SessionUser,
    /// Send it back in `X-CSRF-Token` with every unsafe request of this session.
    #[schema(schema_with = limits::token)]
    csrf_token: String,
    /// Seconds until the session ends.
    #[schema(minimum = 0, maximum = 9223372036854775807_i64)]
    expires_in: u64,
}

/// The user a session acts for.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionUser {
    /// The user's id.
    #[schema(schema_with = limits::token)]
    id: String,
    /// The user's email address.
    #[schema(schema_with = limits::email)]
    email: String,
    /// The user's organisation.
    #[schema(schema_with = limits::token)]
    org_id: String,
}

/// Sign in: sets the session cookie and returns the CSRF token.
///
/// Attempts are limited per client address and per email, so neither many accounts from one
/// address nor one account from many addresses can be guessed at.
#[utoipa::path(post, path = "/v1/auth/login", operation_id = "login", request_body = Login, security(()),
    responses((status = 200, description = "Signed in.", body = Session), (status = 401, description = "Unknown email or wrong password."),
        (status = 403, description = "The account is disabled."), (status = 429, description = "Too many attempts from this address or for this email.")))]
pub(crate) async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Valid(body): Valid<Login>,
) -> Result<impl IntoResponse, ApiError> {
    let quota = state.config().login_limit;
    // The account lookup's own normalisation (full Unicode lower case): with another one here,
    // `\u{212a}yle@` (KELVIN SIGN) reached the account of `kyle@` with a fresh budget.
    let email = rebuff_axum::accounts::email_key(&body.email);
    let mut headers = HeaderMap::new();
    for key in [format!("login:ip:{client}"), format!("login:email:{email}")] {
        let now = now_nanos();
        let decision = rebuff_axum::store::RateLimitStore::check(state.store(), &key, quota, now).await?;
        write_headers(&mut headers, &decision, quota, now);
        if !decision.allowed {
            let mut err =
                ApiError::new(Code::RateLimitExceeded).detail("Too many login attempts. Try again later.");
            let p = err.problem_mut();
            p.retry_after = decision.retry_after.map(|d| d.as_secs_f64().ceil() as u64).map(|s| s.max(1));
            p.headers.extend(headers.iter().map(|(k, v)| (k.clone(), v.clone())));
            return Err(err);
        }
    }
    let store = state.store();
    let user = match store.accounts().verify_login(&email, &body.password).await {
        Ok(LoginOutcome::Ok(user)) => user,
        Ok(LoginOutcome::Disabled(_)) => {
            return Err(ApiError::new(Code::AccountDisabled)
                .detail("This account is disabled. Contact an administrator."));
        }
        Ok(LoginOutcome::UnknownOrWrongPassword) => {
            return Err(ApiError::new(Code::InvalidCredentials).detail("Invalid email or password"));
        }
        Err(e) => return Err(ApiError::new(Code::DatabaseError).cause(e)),
    };
    let ttl = state.config().session_ttl;
    let (token, csrf) = store
        .accounts()
        .create_session(&user.id, ttl)
        .await
        .map_err(|e| ApiError::new(Code::DatabaseError).cause(e))?;
    let max_age = cookie::time::Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
    headers.insert(header::SET_COOKIE, session_cookie(&state, token, max_age)?);
    // The body holds the CSRF token and the header the session: no cache may keep them.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let body = Session {
        user: SessionUser { id: user.id, email: user.email, org_id: user.org_id },
        csrf_token: csrf,
        expires_in: ttl.as_secs(),
    };
    Ok((StatusCode::OK, headers, Json(body)))
}

/// End the session (a browser session only: an API key is answered with 400).
///
/// Needs the CSRF token, like every unsafe request of a session.
#[utoipa::path(post, path = "/v1/auth/logout", operation_id = "logout", security(("session" = [])),
    responses((status = 204, description = "Signed out; no body."), (status = 400, description = "Not a session (an API key).")))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if !matches!(principal.subject, Subject::Session { .. }) {
        return Err(ApiError::new(Code::BadRequest)
            .detail("Logout ends a browser session; API keys are revoked instead."));
    }
    // The cookie as authentication read it: one parser for both.
    if let Some(token) = rebuff_axum::auth::session_token(&headers) {
        let hash = rebuff_axum::auth::key::hash_secret(&token);
        state.store().accounts().delete_session(&hash).await?;
    }
    let expired = session_cookie(&state, String::new(), cookie::time::Duration::ZERO)?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, expired)]))
}

/// The `Set-Cookie` of the session: `HttpOnly`, `SameSite=Strict`, and `Secure` unless the
/// server is configured for plain HTTP on loopback.
fn session_cookie(
    state: &AppState,
    token: String,
    max_age: cookie::time::Duration,
) -> Result<HeaderValue, ApiError> {
    let cookie = cookie::Cookie::build((SESSION_COOKIE, token))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .secure(state.config().secure_cookies)
        .max_age(max_age)
        .build();
    HeaderValue::from_str(&cookie.to_string()).map_err(|e| ApiError::new(Code::InternalError).cause(e))
}
