//! Bounds on what a request may carry. The handlers check them and `/openapi.json` declares
//! them (`maxLength`, `maxItems`, `pattern`, `minimum`/`maximum`) from these same constants,
//! through the schema functions below that the types' `ToSchema` derives name.

use rebuff_axum::validate::Violations;
use serde_json::{Value, json};
use utoipa::openapi::schema::Schema;

/// Project, dataset and model names: 1 to this many characters, not all blank, no control
/// characters.
pub(crate) const NAME_MAX_CHARS: usize = 100;
/// An email address (RFC 5321's path limit).
pub(crate) const EMAIL_MAX_CHARS: usize = 254;
/// A password: 1 to this many characters.
pub(crate) const PASSWORD_MAX_CHARS: usize = 1024;
/// A key's scopes: distinct values of [`SCOPES`], so at most this many.
pub(crate) const SCOPES_MAX: usize = 3;
/// The scopes a key may have.
pub(crate) const SCOPES: &[&str] = &["read", "write", "admin"];
/// A key's IP allow-list: at most this many entries...
pub(crate) const ALLOWED_IPS_MAX: usize = 32;
/// ...each at most this long (an IPv6 address with a zone-less /128 is 43; 49 leaves room
/// for an IPv4-mapped form).
pub(crate) const CIDR_MAX_CHARS: usize = 49;
/// Any other free string (a key's name, a timestamp, an event type).
pub(crate) const TEXT_MAX_CHARS: usize = 1000;
/// A list's `limit`: 1 to this many items per page.
pub(crate) const LIST_LIMIT_MAX: u32 = 100;
/// A list's `limit` when none is given.
pub(crate) const LIST_LIMIT_DEFAULT: u32 = 20;

/// Whether `c` is refused in a name: a control character (Unicode `Cc`: U+0000 to U+001F and
/// U+007F to U+009F, which is what `char::is_control` tests).
fn forbidden_in_name(c: char) -> bool {
    c.is_control()
}

/// Checks a name: not blank, at most [`NAME_MAX_CHARS`] characters, no control characters.
pub(crate) fn check_name(v: &mut Violations, pointer: &str, what: &str, name: &str) {
    v.ensure(!name.trim().is_empty(), pointer, format!("{what} name must not be empty"));
    v.ensure(
        name.chars().count() <= NAME_MAX_CHARS,
        pointer,
        format!("{what} name must be at most {NAME_MAX_CHARS} characters"),
    );
    v.ensure(
        !name.chars().any(forbidden_in_name),
        pointer,
        format!("{what} name must not contain control characters"),
    );
}

/// Checks a free string against [`TEXT_MAX_CHARS`].
pub(crate) fn check_text(v: &mut Violations, pointer: &str, text: &str) {
    v.ensure(
        text.chars().count() <= TEXT_MAX_CHARS,
        pointer,
        format!("must be at most {TEXT_MAX_CHARS} characters"),
    );
}

/// A schema from its JSON form. utoipa reads every schema rebuff writes (its tests compare
/// the round trip), and the JSON form keeps each bound next to the constant it comes from.
fn schema(value: Value) -> Schema {
    // The values below are literals of this file: a failure is a typo caught by every test.
    #[allow(clippy::expect_used)]
    serde_json::from_value(value).expect("a valid schema")
}

/// A name's schema: 1 to [`NAME_MAX_CHARS`] characters, none a control character, at least one
/// not whitespace in Rust's sense (what `str::trim` removes). The classes list the characters
/// one by one so that every regex dialect (ECMA 262, Python, Rust) reads them alike.
pub(crate) fn name() -> Schema {
    let control: String = ('\0'..='\u{9f}').filter(|&c| forbidden_in_name(c)).collect();
    let blank: String = ('\0'..='\u{3000}').filter(|c| c.is_whitespace() || forbidden_in_name(*c)).collect();
    schema(json!({
        "type": "string", "minLength": 1, "maxLength": NAME_MAX_CHARS,
        "pattern": format!("^[^{control}]*[^{blank}][^{control}]*$"),
    }))
}

/// A key's optional name.
pub(crate) fn key_name() -> Schema {
    schema(json!({"type": ["string", "null"], "maxLength": TEXT_MAX_CHARS}))
}

/// A stored name as the API returns it (older rows may predate the bounds on input, so only
/// the length is promised).
pub(crate) fn stored_name() -> Schema {
    schema(json!({"type": "string", "maxLength": TEXT_MAX_CHARS}))
}

/// An email address.
pub(crate) fn email() -> Schema {
    schema(json!({"type": "string", "format": "email", "maxLength": EMAIL_MAX_CHARS}))
}

/// A password.
pub(crate) fn password() -> Schema {
    schema(json!({"type": "string", "format": "password", "minLength": 1, "maxLength": PASSWORD_MAX_CHARS}))
}

/// A key's scopes.
pub(crate) fn scopes() -> Schema {
    schema(json!({
        "type": "array", "minItems": 1, "maxItems": SCOPES_MAX, "uniqueItems": true,
        "items": {"type": "string", "enum": SCOPES},
    }))
}

/// A key's IP allow-list.
pub(crate) fn allowed_ips() -> Schema {
    schema(json!({
        "type": "array", "maxItems": ALLOWED_IPS_MAX,
        "items": {"type": "string", "maxLength": CIDR_MAX_CHARS, "pattern": "^[0-9A-Fa-f.:/]+$",
            "description": "An IP address or CIDR range."},
    }))
}

/// An RFC 3339 timestamp (or `null`).
pub(crate) fn timestamp() -> Schema {
    schema(json!({
        "type": ["string", "null"], "format": "date-time", "maxLength": TEXT_MAX_CHARS,
        "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$",
    }))
}

/// A free string.
pub(crate) fn text() -> Schema {
    schema(json!({"type": "string", "maxLength": TEXT_MAX_CHARS}))
}

/// An optional free string.
pub(crate) fn optional_text() -> Schema {
    schema(json!({"type": ["string", "null"], "maxLength": TEXT_MAX_CHARS}))
}

/// One of `values`.
pub(crate) fn one_of(values: &[&str]) -> Schema {
    schema(json!({"type": "string", "enum": values}))
}

/// An id the server made: `prefix_` and 12 lowercase hex digits (`crate::db::new_id`). The
/// length bounds anchor the end, since `$` also matches before a final newline in some regex
/// dialects.
fn id(prefix: &str) -> Schema {
    let len = prefix.len() + 13;
    schema(
        json!({"type": "string", "minLength": len, "maxLength": len, "pattern": format!("^{prefix}_[0-9a-f]{{12}}")}),
    )
}

/// A project's id.
pub(crate) fn project_id() -> Schema {
    id("prj")
}

/// A dataset's id.
pub(crate) fn dataset_id() -> Schema {
    id("dst")
}

/// A model's id.
pub(crate) fn model_id() -> Schema {
    id("mdl")
}

/// A job's id.
pub(crate) fn job_id() -> Schema {
    id("job")
}

/// An API key's public id: 12 letters or digits.
pub(crate) fn key_id() -> Schema {
    let len = rebuff_axum::auth::key::ID_LEN;
    schema(
        json!({"type": "string", "minLength": len, "maxLength": len, "pattern": format!("^[A-Za-z0-9]{{{len}}}")}),
    )
}

/// An opaque token the server made (a CSRF token, a key's text, a user or organisation id).
pub(crate) fn token() -> Schema {
    schema(json!({"type": "string", "maxLength": 200, "pattern": "^[!-~]+$"}))
}
