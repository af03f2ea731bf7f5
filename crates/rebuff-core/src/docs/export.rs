//! The catalog as JSON (`/errors.json`).

use super::*;

/// The catalog as JSON, for client generators and other tools. The format is stable: members
/// may be added, never removed or changed.
///
/// ```json
/// {
///   "name": "rebuff",
///   "description": "...",
///   "dialect": "rebuff",
///   "content_type": "application/problem+json",
///   "type_uri": "https://rebuff.dev/errors#{anchor}",
///   "extends": null,
///   "errors": [
///     {
///       "code": "api_key_missing",
///       "wire_code": "api_key_missing",
///       "status": 401,
///       "category": "authentication_error",
///       "title": "API key missing",
///       "message": "An API key is required. ...",
///       "when": "...",
///       "fix": "...",
///       "retry": "after_reauth",
///       "retryable": false,
///       "masked": false,
///       "anchor": "api_key_missing",
///       "type_uri": "https://rebuff.dev/errors#api_key_missing",
///       "presented_as": null
///     }
///   ]
/// }
/// ```
///
/// - `type_uri` at the top is the template (`{anchor}` and `{code}` placeholders); in an entry
///   it is expanded. `extends` is the base catalog's name for a profile, else `null`.
/// - `errors` is in catalog order. `code` is the stable code; `wire_code` its spelling on the
///   wire, `null` when this profile sends no code for it; `message` the default message,
///   `null` when there is none; `retry` one of `never`, `after_reauth`, `after_fix`, `backoff`,
///   `retry_after`, and `retryable` whether the identical request may be sent again;
///   `presented_as` the code whose presentation the entry borrows, else `null`.
pub fn json(catalog: &Catalog) -> Value {
    let errors: Vec<Value> = catalog
        .entries()
        .iter()
        .map(|e| {
            json!({
                "code": e.code,
                "wire_code": e.wire_code,
                "status": e.status.as_u16(),
                "category": e.category,
                "title": e.title,
                "message": e.message,
                "when": e.when,
                "fix": e.fix,
                "retry": e.retry.as_str(),
                "retryable": e.retry.is_retryable(),
                "masked": e.masked,
                "anchor": e.anchor,
                "type_uri": e.type_uri,
                "presented_as": e.presented_as,
                "sdk_class": e.sdk_class,
            })
        })
        .collect();
    json!({
        "name": catalog.name(),
        "description": catalog.description(),
        "dialect": catalog.dialect().as_str(),
        "content_type": catalog.dialect().content_type(),
        "type_uri": catalog.type_uri_template(),
        "extends": catalog.extends(),
        "errors": errors,
    })
}
