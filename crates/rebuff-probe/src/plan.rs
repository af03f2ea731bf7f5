//! Which routes to provoke, from an OpenAPI document or guessed, and the payloads to send.

use std::collections::BTreeMap;

use http::Method;
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::Placement;

/// Who may call an operation, as its security requirements say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Access {
    /// No credentials needed (`security: []`, or a `{}` alternative).
    Open,
    /// The probe's credentials fit (one alternative uses the probe's scheme).
    Key,
    /// Only a scheme the probe has no credentials for (a session cookie, a signature).
    Other(String),
    /// The document says nothing.
    Unstated,
}

/// One operation the probe can provoke: a method on a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Operation {
    pub(crate) method: Method,
    /// The path with the prefix, `{param}` where parameters go.
    pub(crate) path: String,
    pub(crate) access: Access,
    /// The JSON body's schema (`Null` without one), when it takes JSON.
    pub(crate) json_body: Option<Value>,
    /// The path parameters' schemas, in order.
    pub(crate) path_params: Vec<Value>,
    /// Query parameters with a type a wrong value can break: name, schema.
    pub(crate) typed_query: Option<(String, Value)>,
    /// A required header the probe cannot make up (a signature), if there is one.
    pub(crate) required_header: Option<String>,
}

impl Operation {
    /// `GET /v1/things/{id}`.
    pub(crate) fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    fn new(method: Method, path: String) -> Self {
        Operation {
            method,
            path,
            access: Access::Unstated,
            json_body: None,
            path_params: Vec::new(),
            typed_query: None,
            required_header: None,
        }
    }
}

/// The routes a probe provokes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Routes {
    /// Where they came from: `openapi: <where>`, or `guessed`.
    pub source: String,
    /// A `GET` collection behind authentication (`/v1/projects`).
    pub collection: String,
    /// A `GET` of one item by a path id, with `{id}` where the id goes (`/v1/projects/{id}`).
    pub item: String,
    /// A `POST` that takes a JSON body.
    pub create: String,
    /// The `POST`'s body schema, resolved, when the document has one.
    #[serde(skip)]
    pub(crate) create_schema: Option<Value>,
    /// Every operation, the collection, item and create first.
    #[serde(skip)]
    pub(crate) operations: Vec<Operation>,
    /// The methods each path has (the document's, or the probe's guess), upper case.
    #[serde(skip)]
    pub(crate) methods: BTreeMap<String, Vec<String>>,
    /// Where the key goes.
    pub credentials: Placement,
    /// Whether the document declares an `Idempotency-Key` header; `None` without a document.
    #[serde(skip)]
    pub(crate) declares_idempotency: Option<bool>,
}

impl Routes {
    /// Routes guessed from the URL's path: the path is the collection, `POST` to it creates,
    /// and `{path}/{id}` is an item.
    pub(crate) fn guessed(base_path: &str) -> Self {
        let base = base_path.trim_end_matches('/');
        let collection = if base.is_empty() { "/".to_owned() } else { base.to_owned() };
        let item = format!("{base}/{{id}}");
        let mut list = Operation::new(Method::GET, collection.clone());
        list.access = Access::Key;
        let mut create = Operation::new(Method::POST, collection.clone());
        create.access = Access::Key;
        create.json_body = Some(Value::Null);
        let mut get = Operation::new(Method::GET, item.clone());
        get.access = Access::Key;
        get.path_params = vec![Value::Null];
        let methods = BTreeMap::from([
            (collection.clone(), vec!["GET".to_owned(), "POST".to_owned()]),
            (item.clone(), vec!["GET".to_owned()]),
        ]);
        Routes {
            source: "guessed".into(),
            item,
            create: collection.clone(),
            collection,
            create_schema: None,
            operations: vec![list, create, get],
            methods,
            credentials: Placement::Bearer,
            declares_idempotency: None,
        }
    }

    /// Picks routes from an OpenAPI document. `prefix` is put before every path when the
    /// document's `servers` do not say where its paths live.
    ///
    /// Routes behind authentication come first, so that a key's provocations are not
    /// answered by an open route (a login form) with limits of its own; a collection with an
    /// item route under it comes before one without; a `POST` whose body has required
    /// members comes before one without, so that the invalid payloads stay invalid.
    pub(crate) fn from_openapi(
        doc: &Value,
        source: &str,
        prefix: &str,
    ) -> Result<(Self, Vec<String>), String> {
        let paths = doc
            .get("paths")
            .and_then(Value::as_object)
            .ok_or("the OpenAPI document has no `paths` object")?;
        let mut notes = Vec::new();
        let prefix = match server_prefix(doc) {
            Ok(Some(p)) => p,
            Ok(None) => prefix.trim_end_matches('/').to_owned(),
            Err(note) => {
                notes.push(note);
                prefix.trim_end_matches('/').to_owned()
            }
        };
        let doc_security = secured(doc.get("security"));
        let op_secured = |op: &Value| secured(op.get("security")).or(doc_security);
        let score = |s: Option<bool>| match s {
            Some(true) => 2,
            None => 1,
            Some(false) => 0,
        };

        let mut collection: Option<(i32, &str)> = None;
        let mut item: Option<(i32, &str)> = None;
        let mut create: Option<(i32, &str, Option<Value>)> = None;
        for (path, ops) in paths {
            let params = path.matches('{').count();
            if let Some(op) = ops.get("get") {
                let sec = score(op_secured(op));
                if params == 0 {
                    let has_item = paths.keys().any(|p| is_item_of(p, path) && paths[p].get("get").is_some());
                    let s = sec * 2 + i32::from(has_item);
                    if collection.is_none_or(|(best, _)| s > best) {
                        collection = Some((s, path));
                    }
                } else if params == 1 && path.ends_with('}') {
                    let s = sec * 2;
                    if item.is_none_or(|(best, _)| s > best) {
                        item = Some((s, path));
                    }
                }
            }
            if let Some(op) = ops.get("post")
                && params == 0
                && let Some(schema) = json_body_schema(doc, op)
            {
                let required =
                    schema.get("required").and_then(Value::as_array).is_some_and(|r| !r.is_empty());
                let s = score(op_secured(op)) * 2 + i32::from(required);
                if create.as_ref().is_none_or(|(best, _, _)| s > *best) {
                    create = Some((s, path, Some(schema)));
                }
            }
        }
        let collection =
            collection.map(|(_, p)| p).ok_or("the OpenAPI document has no GET without path parameters")?;
        // The item under the chosen collection when there is one.
        let item = paths
            .keys()
            .find(|p| is_item_of(p, collection) && paths[p.as_str()].get("get").is_some())
            .map(String::as_str)
            .or(item.map(|(_, p)| p));
        let item = match item {
            Some(i) => i.to_owned(),
            None => {
                notes.push(format!("no GET with a path id in the document: guessing {collection}/{{id}}"));
                format!("{collection}/{{id}}")
            }
        };
        // The POST on the collection itself when it takes a JSON body with required members.
        let create = match create {
            Some((s, p, schema)) => {
                let on_collection = paths.get(collection).and_then(|o| o.get("post")).and_then(|op| {
                    let schema = json_body_schema(doc, op)?;
                    let required =
                        schema.get("required").and_then(Value::as_array).is_some_and(|r| !r.is_empty());
                    let sec = score(op_secured(op));
                    (sec * 2 + i32::from(required) >= s).then_some(schema)
                });
                match on_collection {
                    Some(schema) => (collection.to_owned(), Some(schema)),
                    None => (p.to_owned(), schema),
                }
            }
            None => {
                notes.push(format!("no POST with a JSON body in the document: guessing POST {collection}"));
                (collection.to_owned(), None)
            }
        };
        let credentials = placement(doc, paths.get(collection).and_then(|o| o.get("get")));
        let mut operations = Vec::new();
        let mut methods = BTreeMap::new();
        let mut declares_idempotency = false;
        for (path, item_obj) in paths {
            let full = format!("{prefix}{path}");
            methods.insert(full.clone(), methods_of(Some(item_obj)));
            let Some(obj) = item_obj.as_object() else { continue };
            let shared: Vec<&Value> =
                obj.get("parameters").and_then(Value::as_array).into_iter().flatten().collect();
            for (m, op) in obj {
                let Some(method) = http_method(m) else { continue };
                let mut o = Operation::new(method, full.clone());
                o.access = access(doc, op, &credentials);
                o.json_body = json_body_schema(doc, op);
                let own: Vec<&Value> =
                    op.get("parameters").and_then(Value::as_array).into_iter().flatten().collect();
                let params: Vec<&Value> = shared.iter().chain(own.iter()).map(|p| resolve(doc, p)).collect();
                for name in path_param_names(path) {
                    let schema = params
                        .iter()
                        .find(|p| {
                            p.get("in").and_then(Value::as_str) == Some("path")
                                && p.get("name").and_then(Value::as_str) == Some(name)
                        })
                        .and_then(|p| p.get("schema"))
                        .map(|s| resolve(doc, s).clone())
                        .unwrap_or(Value::Null);
                    o.path_params.push(schema);
                }
                o.typed_query = params.iter().find_map(|p| {
                    if p.get("in").and_then(Value::as_str) != Some("query") {
                        return None;
                    }
                    let name = p.get("name").and_then(Value::as_str)?;
                    let schema = resolve(doc, p.get("schema")?).clone();
                    wrong_query_value(&schema).map(|_| (name.to_owned(), schema))
                });
                o.required_header = params.iter().find_map(|p| {
                    let name = p.get("name").and_then(Value::as_str)?;
                    let header = p.get("in").and_then(Value::as_str) == Some("header");
                    let required = p.get("required").and_then(Value::as_bool) == Some(true);
                    // Headers the probe sends itself, or that the request's own shape gives.
                    let own = ["idempotency-key", "content-type", "accept", "authorization"]
                        .iter()
                        .any(|h| name.eq_ignore_ascii_case(h));
                    (header && required && !own).then(|| name.to_owned())
                });
                declares_idempotency |= params.iter().any(|p| {
                    p.get("in").and_then(Value::as_str) == Some("header")
                        && p.get("name")
                            .and_then(Value::as_str)
                            .is_some_and(|n| n.eq_ignore_ascii_case("idempotency-key"))
                });
                operations.push(o);
            }
        }
        // The routes the probe picked first: where a small budget is best spent.
        let first = [
            ("GET", format!("{prefix}{collection}")),
            ("POST", format!("{prefix}{}", create.0)),
            ("GET", format!("{prefix}{item}")),
        ];
        let mut ordered = Vec::with_capacity(operations.len());
        for (m, p) in &first {
            if let Some(i) = operations.iter().position(|o| o.method.as_str() == *m && o.path == *p) {
                ordered.push(operations.remove(i));
            }
        }
        ordered.append(&mut operations);
        Ok((
            Routes {
                source: format!("openapi: {source}"),
                collection: format!("{prefix}{collection}"),
                item: format!("{prefix}{item}"),
                create: format!("{prefix}{}", create.0),
                create_schema: create.1,
                operations: ordered,
                methods,
                credentials,
                declares_idempotency: Some(declares_idempotency),
            },
            notes,
        ))
    }

    /// The methods `path` has, upper case.
    pub(crate) fn methods_of(&self, path: &str) -> &[String] {
        self.methods.get(path).map_or(&[], Vec::as_slice)
    }

    /// A method `path` does not have.
    pub(crate) fn wrong_method(&self, path: &str) -> Method {
        let have = self.methods_of(path);
        [Method::PUT, Method::PATCH, Method::DELETE, Method::POST]
            .into_iter()
            .find(|m| !have.iter().any(|c| c == m.as_str()))
            .unwrap_or(Method::TRACE)
    }

    /// A path next to the collection that no route matches.
    pub(crate) fn unknown_route(&self) -> String {
        let parent = self.collection.trim_end_matches('/').rsplit_once('/').map_or("", |(p, _)| p);
        format!("{parent}/rebuff-probe-no-such-route")
    }

    /// A JSON body the create route must refuse whatever its `Content-Type`; see
    /// [`wrong_body`].
    pub(crate) fn wrong_body(&self, variant: u32) -> Value {
        wrong_body(self.create_schema.as_ref(), variant)
    }
}

/// A JSON body an operation must refuse whatever its `Content-Type`: every required member
/// of the wrong type, or, without a schema, a JSON string where an object belongs. `variant`
/// makes payloads that differ (for idempotency-key reuse).
pub(crate) fn wrong_body(schema: Option<&Value>, variant: u32) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(schema) = schema {
        let props = schema.get("properties").and_then(Value::as_object);
        for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let Some(name) = name.as_str() else { continue };
            let ty = props.and_then(|p| p.get(name)).and_then(|p| p.get("type"));
            let ty = match ty {
                Some(Value::String(t)) => Some(t.as_str()),
                Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
                _ => None,
            };
            let wrong = match ty {
                Some("string") => json!(12_345 + variant),
                Some("integer" | "number") => json!(format!("not a number {variant}")),
                Some("boolean") => json!(format!("not a boolean {variant}")),
                Some("array") => json!({ "not": "an array", "variant": variant }),
                Some("object") => json!(format!("not an object {variant}")),
                _ => continue,
            };
            out.insert(name.to_owned(), wrong);
        }
    }
    if out.is_empty() { json!(format!("rebuff-probe {variant}")) } else { Value::Object(out) }
}

/// The methods of a path item, upper case, in the document's order.
fn methods_of(item: Option<&Value>) -> Vec<String> {
    item.and_then(Value::as_object)
        .map(|m| m.keys().filter_map(|k| http_method(k)).map(|m| m.as_str().to_owned()).collect())
        .unwrap_or_default()
}

/// The HTTP method a path item's member names, if it names one.
fn http_method(name: &str) -> Option<Method> {
    Some(match name {
        "get" => Method::GET,
        "put" => Method::PUT,
        "post" => Method::POST,
        "delete" => Method::DELETE,
        "patch" => Method::PATCH,
        "head" => Method::HEAD,
        "options" => Method::OPTIONS,
        "trace" => Method::TRACE,
        _ => return None,
    })
}

/// `{a}` and `{b}` in `/x/{a}/y/{b}`.
fn path_param_names(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// The security requirements of an operation: its own, else the document's.
fn requirements<'a>(doc: &'a Value, op: Option<&'a Value>) -> Option<&'a Vec<Value>> {
    op.and_then(|o| o.get("security")).or_else(|| doc.get("security")).and_then(Value::as_array)
}

/// Where the key goes: the first scheme of the first requirement of `op` (the collection the
/// probe provokes) the probe can send, else of the document, else a bearer token.
fn placement(doc: &Value, op: Option<&Value>) -> Placement {
    let schemes = doc.pointer("/components/securitySchemes");
    let from = |reqs: Option<&Vec<Value>>| {
        reqs.into_iter().flatten().filter_map(Value::as_object).flat_map(|r| r.keys()).find_map(|name| {
            schemes.and_then(|s| s.get(name)).map(|s| resolve(doc, s)).and_then(Placement::from_scheme)
        })
    };
    from(requirements(doc, op))
        .or_else(|| {
            // No requirement names one: the only scheme declared, if there is exactly one.
            let all = schemes.and_then(Value::as_object)?;
            let placeable: Vec<Placement> =
                all.values().filter_map(|s| Placement::from_scheme(resolve(doc, s))).collect();
            (placeable.len() == 1).then(|| placeable[0].clone())
        })
        .unwrap_or(Placement::Bearer)
}

/// Whether the probe's credentials, in `placement`, let it call `op`.
fn access(doc: &Value, op: &Value, placement: &Placement) -> Access {
    let Some(reqs) = requirements(doc, Some(op)) else { return Access::Unstated };
    if reqs.is_empty() || reqs.iter().any(|r| r.as_object().is_some_and(serde_json::Map::is_empty)) {
        return Access::Open;
    }
    let schemes = doc.pointer("/components/securitySchemes");
    // A scheme the document does not define is given the benefit of the doubt.
    let fits = |name: &str| match schemes.and_then(|s| s.get(name)) {
        None => true,
        Some(s) => Placement::from_scheme(resolve(doc, s)).as_ref() == Some(placement),
    };
    // An alternative whose every scheme is the probe's (usually one scheme).
    if reqs.iter().filter_map(Value::as_object).any(|r| r.keys().all(|k| fits(k))) {
        return Access::Key;
    }
    let names: Vec<&str> =
        reqs.iter().filter_map(Value::as_object).flat_map(|r| r.keys().map(String::as_str)).collect();
    Access::Other(names.join(" or "))
}

/// A query value of the wrong type for `schema`, if its type can be broken.
pub(crate) fn wrong_query_value(schema: &Value) -> Option<&'static str> {
    if schema.get("enum").is_some() {
        return Some("rebuff-probe-not-in-enum");
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    }?;
    match ty {
        "integer" | "number" => Some("not-a-number"),
        "boolean" => Some("not-a-boolean"),
        _ => None,
    }
}

/// A well-formed id for a path parameter of `schema` that is almost surely nobody's: shaped
/// like `sample` (an id the collection listed) when there is one.
pub(crate) fn foreign_id(schema: &Value, sample: Option<&str>) -> Option<String> {
    let ty = schema.get("type").and_then(Value::as_str);
    if matches!(ty, Some("integer" | "number")) {
        // Within 2^31 for servers that parse into 32 bits, and far from where counters are.
        return Some("2147480000".to_owned());
    }
    if schema.get("format").and_then(Value::as_str) == Some("uuid") {
        return Some(FALLBACK_UUID.to_owned());
    }
    sample.and_then(foreign_like)
}

/// The foreign id when there is nothing to imitate: a UUID, the commonest shape.
pub(crate) const FALLBACK_UUID: &str = "5b0e7c1a-9d3f-4e2b-8a6c-1f4d7e9b2c30";

/// The prefix the document's first server gives its paths, if it gives one. An absolute
/// server URL is used only for its path: the probe talks to the URL it was given.
fn server_prefix(doc: &Value) -> Result<Option<String>, String> {
    let Some(url) = doc.pointer("/servers/0/url").and_then(Value::as_str) else { return Ok(None) };
    if url.contains('{') {
        return Err(format!("the document's server `{url}` has variables: using the probe URL's path"));
    }
    let path = if url.starts_with('/') {
        url.to_owned()
    } else {
        match reqwest::Url::parse(url) {
            Ok(u) => u.path().to_owned(),
            Err(_) => {
                return Err(format!(
                    "the document's server `{url}` is not a URL: using the probe URL's path"
                ));
            }
        }
    };
    Ok(Some(path.trim_end_matches('/').to_owned()))
}

/// `Some(true)` when the security requirements ask for credentials, `Some(false)` when they
/// allow none (`[]` or a `{}` alternative), `None` when not given.
fn secured(security: Option<&Value>) -> Option<bool> {
    let reqs = security?.as_array()?;
    Some(!reqs.is_empty() && reqs.iter().all(|r| r.as_object().is_some_and(|o| !o.is_empty())))
}

/// Whether `item` is `collection/{param}`.
fn is_item_of(item: &str, collection: &str) -> bool {
    item.strip_prefix(collection.trim_end_matches('/'))
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|seg| seg.starts_with('{') && seg.ends_with('}') && !seg.contains('/'))
}

/// Follows a local `$ref` (`#/components/...`) a few levels deep.
fn resolve<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..8 {
        match v.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
            Some(pointer) => match doc.pointer(pointer) {
                Some(target) => v = target,
                None => return v,
            },
            None => return v,
        }
    }
    v
}

/// The JSON request body schema of an operation, if it takes JSON.
fn json_body_schema(doc: &Value, op: &Value) -> Option<Value> {
    let body = resolve(doc, op.get("requestBody")?);
    let content = body.get("content")?.as_object()?;
    let (_, media) = content.iter().find(|(k, _)| {
        let k = k.split(';').next().unwrap_or("").trim();
        k == "application/json" || k.ends_with("+json")
    })?;
    Some(media.get("schema").map(|s| resolve(doc, s).clone()).unwrap_or(Value::Null))
}

/// `template` with `id` in place of every `{parameter}` (or appended, without one).
pub(crate) fn fill(template: &str, id: &str) -> String {
    if !template.contains('{') {
        return format!("{}/{}", template.trim_end_matches('/'), encode_segment(id));
    }
    let mut out = String::with_capacity(template.len());
    for (i, seg) in template.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if seg.starts_with('{') && seg.ends_with('}') {
            out.push_str(&encode_segment(id));
        } else {
            out.push_str(seg);
        }
    }
    out
}

/// The collection an item path lives in: `/v1/things` for `/v1/things/{id}`.
pub(crate) fn parent(path: &str) -> Option<&str> {
    let (parent, last) = path.trim_end_matches('/').rsplit_once('/')?;
    (last.starts_with('{') && !parent.contains('{') && !parent.is_empty()).then_some(parent)
}

/// Percent-encodes what is not unreserved in a path segment.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An id shaped like `sample` that is almost surely not one: the last character swapped for
/// another that occurs in the same id (so hex stays hex), or, for numbers, a large number.
pub(crate) fn foreign_like(sample: &str) -> Option<String> {
    if sample.is_empty() {
        return None;
    }
    if sample.bytes().all(|b| b.is_ascii_digit()) {
        return Some("9".repeat(sample.len().max(12)));
    }
    let chars: Vec<char> = sample.chars().collect();
    let last = *chars.last()?;
    // The random part is after the last separator (`prj_`, a UUID's last group).
    let tail_start = chars.iter().rposition(|c| !c.is_ascii_alphanumeric()).map_or(0, |i| i + 1);
    let tail = &chars[tail_start..];
    let same_class = |c: char| {
        c != last
            && ((c.is_ascii_digit() && last.is_ascii_digit())
                || (c.is_ascii_lowercase() && last.is_ascii_lowercase())
                || (c.is_ascii_uppercase() && last.is_ascii_uppercase()))
    };
    let replacement = tail
        .iter()
        .copied()
        .find(|&c| same_class(c))
        .or_else(|| tail.iter().copied().find(|&c| c != last && c.is_ascii_alphanumeric()))?;
    let mut out: String = chars[..chars.len() - 1].iter().collect();
    out.push(replacement);
    Some(out)
}

/// The first `id` of an item in a collection's answer (`[...]`, `{"data": [...]}`, ...).
pub(crate) fn first_id(v: &Value) -> Option<String> {
    fn id_of(v: &Value) -> Option<String> {
        match v.get("id")? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
    match v {
        Value::Array(items) => items.iter().find_map(id_of),
        Value::Object(map) => map.values().find_map(|m| m.as_array().and_then(|a| a.iter().find_map(id_of))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        json!({
            "openapi": "3.1.0",
            "paths": {
                "/healthz": {"get": {"security": []}},
                "/v1/auth/login": {"post": {"security": [], "requestBody": {"content": {"application/json": {"schema": {"type": "object", "required": ["email"], "properties": {"email": {"type": "string"}}}}}}}},
                "/v1/projects": {
                    "get": {"security": [{"apiKey": []}]},
                    "post": {"security": [{"apiKey": []}], "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewProject"}}}}}
                },
                "/v1/projects/{id}": {"get": {"security": [{"apiKey": []}]}, "delete": {"security": [{"apiKey": []}]}}
            },
            "components": {"schemas": {"NewProject": {"type": "object", "required": ["name", "size"], "properties": {"name": {"type": "string"}, "size": {"type": ["integer", "null"]}}}}}
        })
    }

    #[test]
    fn picks_secured_routes_from_a_document() {
        let (r, notes) = Routes::from_openapi(&doc(), "x", "").unwrap_or_else(|e| panic!("{e}"));
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(r.collection, "/v1/projects");
        assert_eq!(r.item, "/v1/projects/{id}");
        assert_eq!(r.create, "/v1/projects");
        assert_eq!(r.wrong_method("/v1/projects"), http::Method::PUT);
        assert_eq!(r.wrong_method("/v1/projects/{id}"), http::Method::PUT);
        assert_eq!(r.operations.len(), 6);
        assert_eq!(r.operations[0].name(), "GET /v1/projects");
        assert_eq!(r.operations[1].name(), "POST /v1/projects");
        assert_eq!(r.operations[2].name(), "GET /v1/projects/{id}");
        assert_eq!(r.operations[2].access, Access::Key);
        assert_eq!(r.unknown_route(), "/v1/rebuff-probe-no-such-route");
        assert_eq!(r.wrong_body(0), json!({"name": 12345, "size": "not a number 0"}));
        assert_ne!(r.wrong_body(1), r.wrong_body(2));
        assert_eq!(fill(&r.item, "prj 1/2"), "/v1/projects/prj%201%2F2");
        assert_eq!(fill("/a/{x}/b/{y}", "7"), "/a/7/b/7");
        assert_eq!(parent("/v1/projects/{id}"), Some("/v1/projects"));
        assert_eq!(parent("/v1/projects"), None);
    }

    #[test]
    fn servers_give_the_prefix() {
        let mut d = doc();
        d["servers"] = json!([{"url": "https://api.example.com/api/"}]);
        let (r, _) = Routes::from_openapi(&d, "x", "/ignored").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.collection, "/api/v1/projects");
        let (r, _) = Routes::from_openapi(&doc(), "x", "/base/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.create, "/base/v1/projects");
    }

    #[test]
    fn guesses_from_the_url() {
        let r = Routes::guessed("/v1/things/");
        assert_eq!(
            (r.collection.as_str(), r.item.as_str(), r.create.as_str()),
            ("/v1/things", "/v1/things/{id}", "/v1/things")
        );
        assert_eq!(r.wrong_body(3), json!("rebuff-probe 3"));
        assert_eq!(Routes::guessed("").unknown_route(), "/rebuff-probe-no-such-route");
    }

    #[test]
    fn foreign_ids_keep_the_shape() {
        assert_eq!(foreign_like("prj_0a1b2c3d4e5f").as_deref(), Some("prj_0a1b2c3d4e5a"));
        assert_eq!(foreign_like("123").as_deref(), Some("999999999999"));
        let uuid = "3f2a9c4e-1b7d-4e8a-9c1f-5d6e7f8a9b0c";
        let other = foreign_like(uuid).unwrap_or_default();
        assert_eq!(other.len(), uuid.len());
        assert_ne!(other, uuid);
        assert_eq!(foreign_like("aaaa"), None);
    }

    #[test]
    fn finds_ids_in_collections() {
        assert_eq!(first_id(&json!({"data": [{"id": "prj_1"}]})).as_deref(), Some("prj_1"));
        assert_eq!(first_id(&json!([{"id": 7}])).as_deref(), Some("7"));
        assert_eq!(first_id(&json!({"data": []})), None);
    }
}
