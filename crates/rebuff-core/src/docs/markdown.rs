//! The error reference page in Markdown.

use super::*;

/// The error reference page in Markdown (CommonMark with GitHub tables).
///
/// Layout: the catalog name as title, its description, the envelope (dialect, media type, the
/// members and one example), one section per docs anchor, and a summary table of every code.
/// Each anchor is written as `<a id="anchor"></a>` before its heading, and each code as
/// `<a id="code-<code>"></a>`, so that links work in any renderer that keeps inline HTML.
/// Catalog text is written as Markdown inline text: backtick code spans are kept, `<`, `>` and
/// `&` outside them are escaped.
pub fn markdown(catalog: &Catalog) -> String {
    let page = Page::new(catalog);
    let dialect = catalog.dialect();
    let mut out = String::with_capacity(32 * 1024);
    // Writing into a String cannot fail: the `fmt::Result`s below are always `Ok`.
    let _ = writeln!(out, "# {} error reference\n", md_inline(catalog.name()));
    if !catalog.description().is_empty() {
        let _ = writeln!(out, "{}\n", md_inline(catalog.description()));
    }

    let (summary, members) = envelope(dialect);
    let _ = writeln!(out, "## Error response format\n");
    let _ = writeln!(
        out,
        "Every error response is sent with `Content-Type: {}` in the `{}` envelope: {}\n",
        dialect.content_type(),
        dialect.as_str(),
        md_inline(summary),
    );
    let _ = writeln!(out, "| Member | Type | Description |\n|---|---|---|");
    for (member, ty, text) in members {
        let _ = writeln!(out, "| `{member}` | {ty} | {} |", md_cell(text));
    }
    if let Some(ex) = envelope_entry(catalog).and_then(|e| example(catalog, e).map(|x| (e, x))) {
        let (e, ex) = ex;
        let _ = writeln!(out, "\nFor example, [`{}`](#code-{}):\n", e.code, e.code);
        let _ = writeln!(out, "```json\n{}\n```", ex.body);
    }

    let _ = writeln!(out, "\n## Errors");
    for section in &page.sections {
        blank_line(&mut out);
        let _ = write!(out, "<a id=\"{}\"></a>", html_escape(section.anchor));
        if !section.sub_headings {
            // One entry: its ids go with the section's, before the heading.
            for id in section.items.iter().flat_map(|i| &i.ids) {
                let _ = write!(out, "<a id=\"{}\"></a>", html_escape(id));
            }
        }
        let _ = writeln!(out, "\n\n### {}\n", md_inline(&section.heading));
        if let Some(s) = section.summary {
            let _ = writeln!(out, "{}\n", md_inline(s));
        }
        for item in &section.items {
            if section.sub_headings && !item.ids.is_empty() {
                for id in &item.ids {
                    let _ = write!(out, "<a id=\"{}\"></a>", html_escape(id));
                }
                out.push_str("\n\n");
            }
            if section.sub_headings {
                let _ = writeln!(out, "#### `{}`\n", item.entry.code);
            }
            md_item(&mut out, catalog, item);
        }
    }

    blank_line(&mut out);
    let _ = writeln!(out, "## Summary\n");
    // The wire-code column only where some code is sent under another spelling.
    let renames = renames_codes(catalog);
    if renames {
        let _ = writeln!(out, "| Code | Wire code | Status | Category | Retry |\n|---|---|---|---|---|");
    } else {
        let _ = writeln!(out, "| Code | Status | Category | Retry |\n|---|---|---|---|");
    }
    for e in by_status(catalog) {
        let wire = match wire_code(dialect, e) {
            _ if !renames => String::new(),
            Some((_, w)) => format!(" `{w}` |"),
            None => " — |".to_owned(),
        };
        let _ = writeln!(
            out,
            "| [`{code}`](#code-{code}) |{wire} {} | {} | `{}` |",
            e.status.as_u16(),
            md_cell(&format!("`{}`", e.category)),
            e.retry.as_str(),
            code = e.code,
        );
    }
    out
}

/// Ends the text with an empty line (one, not more).
fn blank_line(out: &mut String) {
    while out.ends_with("\n\n") {
        out.pop();
    }
    if !out.is_empty() {
        out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
    }
}

fn md_item(out: &mut String, catalog: &Catalog, item: &Item<'_>) {
    let e = item.entry;
    for (label, text) in facts(catalog.dialect(), e, renames_codes(catalog)) {
        let _ = writeln!(out, "- **{label}:** {}", md_inline(&text));
    }
    out.push('\n');
    if !item.also.is_empty() {
        let _ = writeln!(out, "Also answers for:\n");
        for (other, ids) in &item.also {
            out.push_str("- ");
            for id in ids {
                let _ = write!(out, "<a id=\"{}\"></a>", html_escape(id));
            }
            let _ = writeln!(out, "`{}`: {}", other.code, md_inline(&other.when));
        }
        out.push('\n');
    }
    if let Some(ex) = example(catalog, e) {
        let _ = write!(out, "Example response: `{}`", ex.status);
        for (name, value) in &ex.headers {
            let _ = write!(out, ", `{name}: {value}`");
        }
        let _ = writeln!(out, "\n\n```json\n{}\n```\n", ex.body);
    }
}

/// Markdown inline text: code spans kept as they are, `&`, `<` and `>` escaped elsewhere.
fn md_inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for part in split_code(text) {
        match part {
            Span::Code(code) => {
                out.push('`');
                out.push_str(code);
                out.push('`');
            }
            Span::Text(t) => {
                // A lone backtick (no closing one) is text; escape it so it opens nothing.
                for c in t.chars() {
                    match c {
                        '&' => out.push_str("&amp;"),
                        '<' => out.push_str("&lt;"),
                        '>' => out.push_str("&gt;"),
                        '`' => out.push_str("\\`"),
                        _ => out.push(c),
                    }
                }
            }
        }
    }
    out
}

/// Markdown inline text in a table cell: `|` is escaped too, and lines are joined.
fn md_cell(text: &str) -> String {
    md_inline(text).replace('|', "\\|").replace('\n', " ")
}
