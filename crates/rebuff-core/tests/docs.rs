//! The error reference renderers: anchors, escaping, OpenAPI references, JSON export.

use std::collections::HashSet;

use rebuff_core::{Catalog, Dialect, docs};
use serde_json::Value;

fn profiles() -> impl Iterator<Item = (&'static str, &'static Catalog)> {
    Catalog::PROFILES.into_iter().map(|name| {
        let catalog = Catalog::builtin(name).unwrap_or_else(|| panic!("profile {name} is built in"));
        (name, catalog)
    })
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// Every `id="..."` value of an HTML page.
fn ids(page: &str) -> Vec<&str> {
    page.split(" id=\"").skip(1).filter_map(|rest| rest.split('"').next()).collect()
}

#[test]
fn every_type_uri_fragment_is_an_html_id_exactly_once() {
    for (name, catalog) in profiles() {
        let page = docs::html(catalog);
        for e in catalog.entries() {
            let (_, fragment) = e
                .type_uri
                .rsplit_once('#')
                .unwrap_or_else(|| panic!("{name}: {} has no fragment in {}", e.code, e.type_uri));
            assert_eq!(fragment, e.anchor, "{name}: {}", e.code);
            let id = format!("id=\"{fragment}\"");
            assert_eq!(count(&page, &id), 1, "{name}: {id} for {}", e.code);
            // Sections carry the anchor on their heading.
            assert_eq!(count(&page, &format!("<h4 id=\"{fragment}\">")), 1, "{name}: {fragment}");
        }
    }
}

#[test]
fn every_code_is_linkable_and_ids_are_unique() {
    for (name, catalog) in profiles() {
        let page = docs::html(catalog);
        let all = ids(&page);
        let mut seen = HashSet::new();
        for id in &all {
            assert!(seen.insert(*id), "{name}: id {id} appears twice");
        }
        for e in catalog.entries() {
            let id = format!("code-{}", e.code);
            assert!(seen.contains(id.as_str()), "{name}: no id {id}");
            // Every internal link points at an id of the page.
            assert!(page.contains(&format!("href=\"#{id}\"")), "{name}: no link to {id}");
        }
        // `href="#"` is the top of the page.
        for href in
            page.split("href=\"#").skip(1).filter_map(|rest| rest.split('"').next()).filter(|h| !h.is_empty())
        {
            assert!(seen.contains(href), "{name}: link to missing #{href}");
        }
    }
}

#[test]
fn html_is_self_contained() {
    for (name, catalog) in profiles() {
        let page = docs::html(catalog);
        assert!(page.starts_with("<!DOCTYPE html>"), "{name}");
        assert_eq!(count(&page, "<style>"), 1, "{name}");
        assert_eq!(count(&page, "<script>"), 1, "{name}: one inline script");
        assert_eq!(count(&page, "<script"), 1, "{name}: no script from elsewhere");
        assert!(!page.contains("<link"), "{name}");
        assert!(!page.contains("src="), "{name}");
        assert!(!page.contains(" style=\""), "{name}: a style attribute would need 'unsafe-inline'");
        let handler = page.split('<').filter_map(|tag| tag.split('>').next()).find(|tag| {
            tag.split_whitespace().skip(1).any(|attr| attr.starts_with("on") && attr.contains('='))
        });
        assert_eq!(handler, None, "{name}: an inline event handler would need 'unsafe-inline'");
        assert!(page.trim_end().ends_with("</html>"), "{name}");
    }
}

/// `sha256-<base64>` of `text`, computed here independently of the renderer.
fn sha256_source(text: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text)))
}

fn between<'a>(page: &'a str, open: &str, close: &str) -> &'a str {
    let start = page.find(open).map(|i| i + open.len()).expect("open tag");
    let len = page[start..].find(close).expect("close tag");
    &page[start..start + len]
}

#[test]
fn the_content_security_policy_allows_exactly_the_inline_style_and_script() {
    let csp = docs::html_content_security_policy();
    for (name, catalog) in profiles() {
        let page = docs::html(catalog);
        let style = sha256_source(between(&page, "<style>", "</style>"));
        let script = sha256_source(between(&page, "<script>", "</script>"));
        assert!(csp.contains(&format!("style-src {style};")), "{name}: {csp}");
        assert!(csp.contains(&format!("script-src {script};")), "{name}: {csp}");
    }
    for directive in ["default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'"]
    {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
}

#[test]
fn the_filter_box_is_hidden_until_the_script_shows_it() {
    let page = docs::html(Catalog::standard());
    let input = between(&page, "<input id=\"filter\"", ">");
    assert!(input.ends_with(" hidden"), "{input}");
    let script = between(&page, "<script>", "</script>");
    assert!(script.contains("box.hidden=false"), "{script}");
    // Every entry and every summary row is something the filter can match.
    let catalog = Catalog::standard();
    let entries = catalog.entries().iter().filter(|e| e.presented_as.is_none()).count();
    assert_eq!(count(&page, "<article class=\"entry\""), entries);
    assert_eq!(count(&page, "<tr data-words=\""), catalog.entries().len());
    assert!(page.contains("data-words=\"rate_limit_exceeded rate_limit_exceeded 429 rate_limit_error"));
}

#[test]
fn html_puts_the_summary_first_and_groups_errors_by_class_and_category() {
    for (name, catalog) in profiles() {
        let page = docs::html(catalog);
        let main = &page[page.find("<main>").expect("main")..];
        let summary = main.find(">Summary</h2>").expect("summary");
        let format = main.find(">Error response format</h2>").expect("format");
        let client = main.find("<h2 id=\"client-errors\">Client errors (4xx)</h2>").expect("4xx");
        let server = main.find("<h2 id=\"server-errors\">Server errors (5xx)</h2>").expect("5xx");
        assert!(summary < format && format < client && client < server, "{name}");
        // Every section sits under the class of its status.
        for e in catalog.entries().iter().filter(|e| e.presented_as.is_none()) {
            let at = main.find(&format!("<h4 id=\"{}\">", e.anchor)).expect("section");
            let class_of_section = if at < server { 4 } else { 5 };
            let lowest =
                catalog.entries().iter().filter(|x| x.anchor == e.anchor).map(|x| x.status.as_u16()).min();
            assert_eq!(Some(class_of_section), lowest.map(|s| s / 100), "{name}: {}", e.code);
        }
        // Category headings, each linked from the contents.
        for id in ids(&page).into_iter().filter(|id| id.starts_with("category-")) {
            assert!(page.contains(&format!("<a href=\"#{id}\">")), "{name}: {id}");
        }
        assert!(page.contains("<h3 id=\"category-4xx-"), "{name}");
    }
}

#[test]
fn html_shows_one_code_where_the_profile_renames_none() {
    let page = docs::html(Catalog::standard());
    assert!(!page.contains("Wire code"), "no wire-code column");
    assert!(!page.contains("Code on the wire") && !page.contains("Stable code"));
    assert!(page.contains("<dt>Code</dt><dd><code>rate_limit_exceeded</code> (in <code>code</code>)</dd>"));
    // A profile that renames codes shows both, and the column.
    let arize = docs::html(Catalog::builtin("arize").expect("built in"));
    assert!(
        arize.contains("Wire code") && arize.contains("Code on the wire") && arize.contains("Stable code")
    );
    let md = docs::markdown(Catalog::standard());
    assert!(
        md.contains("| Code | Status | Category | Retry |") && !md.contains("Stable code"),
        "markdown too"
    );
}

#[test]
fn every_code_appears_in_markdown() {
    for (name, catalog) in profiles() {
        let md = docs::markdown(catalog);
        assert!(md.starts_with(&format!("# {} error reference", catalog.name())), "{name}");
        for e in catalog.entries() {
            assert!(md.contains(&format!("`{}`", e.code)), "{name}: {} missing", e.code);
            assert!(md.contains(&format!("<a id=\"code-{}\"></a>", e.code)), "{name}: {} anchor", e.code);
            assert!(
                md.contains(&format!("| [`{code}`](#code-{code}) |", code = e.code)),
                "{name}: {}",
                e.code
            );
        }
        for anchor in catalog.entries().iter().map(|e| e.anchor.as_str()).collect::<HashSet<_>>() {
            assert_eq!(count(&md, &format!("<a id=\"{anchor}\"></a>")), 1, "{name}: {anchor}");
        }
        assert!(md.contains(catalog.dialect().content_type()), "{name}");
    }
}

#[test]
fn presented_entries_are_listed_under_their_target() {
    let catalog = Catalog::builtin("dataxid").expect("built in");
    let md = docs::markdown(catalog);
    let html = docs::html(catalog);
    // One section for parameter_invalid, listing the codes it answers for.
    assert_eq!(count(&html, "<h4 id=\"parameter_invalid\">"), 1);
    assert!(md.contains("Also answers for:"));
    let also = md.split("Also answers for:").nth(1).expect("listed");
    for code in ["bad_request", "invalid_json", "missing_required_field", "unprocessable_entity"] {
        assert_eq!(catalog.get(code).and_then(|e| e.presented_as.as_deref()), Some("parameter_invalid"));
        assert!(also.contains(&format!("`{code}`")), "{code}");
        assert!(html.contains(&format!("<li id=\"code-{code}\">")), "{code}");
    }
}

#[test]
fn html_escapes_catalog_text() {
    let toml = r#"
[catalog]
name = "evil<b>"
dialect = "rebuff"
type_uri = "https://example.com/errors#{anchor}"
description = "Tom & Jerry's \"API\" <i>"

[[error]]
code = "bad_thing"
status = 400
category = "invalid_request_error"
title = "<script>alert('x')</script>"
when = "Always <img src=x onerror=alert(1)>."
fix = "Use `a<b>` & pray."
retry = "never"
"#;
    let catalog = Catalog::from_toml_str("evil.toml", toml).expect("valid catalog");
    let page = docs::html(&catalog);
    assert_eq!(count(&page, "<script"), 1, "only the page's own script: {page}");
    assert!(!page.contains("<img"));
    assert!(!page.contains("<b>"));
    assert!(!page.contains("<i>"));
    assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(page.contains("Tom &amp; Jerry&#39;s &quot;API&quot; &lt;i&gt;"));
    assert!(page.contains("<code>a&lt;b&gt;</code> &amp; pray."));
    assert!(page.contains("<title>evil&lt;b&gt; error reference</title>"));
    // The example body is escaped too (it repeats the title).
    assert!(page.contains("&quot;title&quot;: &quot;&lt;script&gt;"));

    let md = docs::markdown(&catalog);
    // Outside fenced code blocks (where text is literal), no raw HTML from the catalog.
    let prose: String = md.split("```").step_by(2).collect();
    assert!(!prose.contains("<script"), "{prose}");
    assert!(!prose.contains("<img"));
    assert!(md.contains("&lt;script&gt;"));
    assert!(md.contains("`a<b>` &amp; pray."));
}

/// Every `$ref` in a document, with where it was found.
fn refs(value: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    if let Value::String(r) = v {
                        out.push((path.to_owned(), r.clone()));
                    }
                } else {
                    refs(v, &format!("{path}/{k}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                refs(v, &format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn openapi_has_one_example_per_code_and_every_ref_resolves() {
    for (name, catalog) in profiles() {
        let doc = docs::openapi_components(catalog);
        assert_eq!(doc["openapi"], "3.1.0", "{name}");
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string(), "{name}");
        assert!(doc["paths"].is_object(), "{name}");

        let examples = doc["components"]["examples"].as_object().expect("examples");
        assert_eq!(examples.len(), catalog.entries().len(), "{name}");
        for e in catalog.entries() {
            let ex = &examples[&e.code];
            assert_eq!(ex["summary"], e.title.as_str(), "{name}: {}", e.code);
            assert_eq!(ex["value"], docs::example_body(catalog, e), "{name}: {}", e.code);
            assert!(ex["value"].is_object(), "{name}: {}", e.code);
        }

        let ct = catalog.dialect().content_type();
        let responses = doc["components"]["responses"].as_object().expect("responses");
        let statuses: HashSet<u16> = catalog.entries().iter().map(|e| e.status.as_u16()).collect();
        assert_eq!(responses.len(), statuses.len(), "{name}");
        for e in catalog.entries() {
            let media = &responses[&format!("Error{}", e.status.as_u16())]["content"][ct];
            assert_eq!(media["schema"]["$ref"], "#/components/schemas/Error", "{name}");
            assert_eq!(
                media["examples"][&e.code]["$ref"],
                format!("#/components/examples/{}", e.code),
                "{name}: {}",
                e.code
            );
        }

        let mut found = Vec::new();
        refs(&doc, "", &mut found);
        assert!(!found.is_empty());
        for (at, r) in found {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("{name}: external $ref {r} at {at}"));
            assert!(doc.pointer(pointer).is_some(), "{name}: $ref {r} at {at} does not resolve");
        }

        // The code member lists every code sent on the wire.
        let schema = &doc["components"]["schemas"]["Error"];
        let enum_at = match catalog.dialect() {
            Dialect::Arize => Some(&schema["properties"]["error_code"]["enum"]),
            Dialect::Dataxid => Some(&schema["properties"]["error"]["properties"]["code"]["enum"]),
            Dialect::Mlops => None,
            _ => Some(&schema["properties"]["code"]["enum"]),
        };
        if let Some(list) = enum_at {
            let list: HashSet<&str> =
                list.as_array().expect("enum").iter().filter_map(Value::as_str).collect();
            for e in catalog.entries() {
                let body = docs::example_body(catalog, e);
                let sent = match catalog.dialect() {
                    Dialect::Arize => body["error_code"].as_str(),
                    Dialect::Dataxid => body["error"]["code"].as_str(),
                    _ => body["code"].as_str(),
                };
                if let Some(code) = sent {
                    assert!(list.contains(code), "{name}: {code} not in the enum");
                }
            }
        }
    }
}

#[test]
fn json_export_round_trips_the_codes() {
    for (name, catalog) in profiles() {
        let exported = docs::json(catalog);
        let text = serde_json::to_string(&exported).expect("serializable");
        let back: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(back, exported);
        assert_eq!(back["name"], catalog.name(), "{name}");
        assert_eq!(back["dialect"], catalog.dialect().as_str(), "{name}");
        assert_eq!(back["content_type"], catalog.dialect().content_type(), "{name}");
        assert_eq!(back["type_uri"], catalog.type_uri_template(), "{name}");
        assert_eq!(back["extends"].as_str(), catalog.extends(), "{name}");
        let errors = back["errors"].as_array().expect("errors");
        assert_eq!(errors.len(), catalog.entries().len(), "{name}");
        for (json, e) in errors.iter().zip(catalog.entries()) {
            assert_eq!(json["code"], e.code.as_str());
            assert_eq!(json["wire_code"].as_str(), e.wire_code.as_deref());
            assert_eq!(json["status"], e.status.as_u16());
            assert_eq!(json["category"], e.category.as_str());
            assert_eq!(json["title"], e.title.as_str());
            assert_eq!(json["message"].as_str(), e.message.as_deref());
            assert_eq!(json["when"], e.when.as_str());
            assert_eq!(json["fix"], e.fix.as_str());
            assert_eq!(json["retry"], e.retry.as_str());
            assert_eq!(json["retryable"], e.retry.is_retryable());
            assert_eq!(json["masked"], e.masked);
            assert_eq!(json["anchor"], e.anchor.as_str());
            assert_eq!(json["type_uri"], e.type_uri.as_str());
            assert_eq!(json["presented_as"].as_str(), e.presented_as.as_deref());
            assert_eq!(json["sdk_class"].as_str(), e.sdk_class.as_deref());
            assert_eq!(json.as_object().map(|m| m.len()), Some(15));
            // A client finds the entry again from the exported code.
            assert_eq!(catalog.get(json["code"].as_str().expect("string")), Some(e));
        }
    }
}

#[test]
fn examples_follow_the_seeds() {
    let dataxid = Catalog::builtin("dataxid").expect("built in");
    let body = |catalog: &Catalog, code: &str| docs::example_body(catalog, catalog.get(code).expect("code"));
    assert_eq!(
        body(dataxid, "parameter_invalid"),
        serde_json::json!({
            "error": {
                "type": "invalid_request_error",
                "code": "parameter_invalid",
                "message": "Value error, ensure this value is greater than 0",
                "doc_url": "https://docs.dataxid.com/docs/errors#parameter_invalid",
                "param": "body.config.batch_size"
            },
            "request_id": "req_abc123"
        })
    );
    assert_eq!(
        body(dataxid, "rate_limit_exceeded")["error"]["message"],
        "Rate limit exceeded. Retry after 12 seconds."
    );
    let standard = Catalog::standard();
    let p = docs::example_problem(standard.get("rate_limit_exceeded").expect("code"));
    assert_eq!(p.retry_after, Some(12));
    assert_eq!(p.request_id.as_deref(), Some("req_abc123"));
    let p = docs::example_problem(standard.get("missing_required_field").expect("code"));
    assert_eq!(p.fields.len(), 1);
    let masked = body(standard, "internal_error");
    assert!(masked.get("errors").is_none());
    assert_eq!(masked["request_id"], "req_abc123");
    // An entry of another catalog has no example there.
    let custom = Catalog::from_toml_str(
        "one.toml",
        "[catalog]\nname = \"one\"\ndialect = \"rebuff\"\ntype_uri = \"https://x.example/e#{anchor}\"\n\
         [[error]]\ncode = \"only_one\"\nstatus = 400\ncategory = \"c\"\ntitle = \"t\"\nwhen = \"w\"\n\
         fix = \"f\"\nretry = \"never\"\n",
    )
    .expect("valid");
    assert_eq!(docs::example_body(&custom, standard.entries().first().expect("entries")), Value::Null);
}

#[test]
fn rendering_is_deterministic() {
    for (name, catalog) in profiles() {
        assert_eq!(docs::markdown(catalog), docs::markdown(catalog), "{name}");
        assert_eq!(docs::html(catalog), docs::html(catalog), "{name}");
        assert_eq!(docs::openapi_components(catalog), docs::openapi_components(catalog), "{name}");
    }
}

#[test]
fn markdown_standard() {
    insta::assert_snapshot!("standard_markdown", docs::markdown(Catalog::standard()));
}

#[test]
fn markdown_arize() {
    insta::assert_snapshot!("arize_markdown", docs::markdown(Catalog::builtin("arize").expect("built in")));
}

/// Each code's entry names the class the generated Python and TypeScript modules raise for it.
#[test]
fn the_html_reference_names_each_codes_sdk_classes() {
    let catalog = Catalog::builtin("dataxid").expect("built in");
    let html = docs::html(catalog);
    for (code, class) in [("quota_exceeded", "QuotaExceededError"), ("model_not_ready", "ModelNotReadyError")]
    {
        let names = rebuff_core::sdk::class_names(catalog, code).expect("a code");
        assert_eq!(names.typescript, class);
        let entry = html.split(&format!("id=\"code-{code}\"")).nth(1).expect("an entry");
        let entry = entry.split("</article>").next().expect("closed");
        assert!(
            entry.contains(&format!("Python <code>dataxid.{class}</code>, TypeScript <code>{class}</code>")),
            "{code}: {entry}"
        );
    }
}
