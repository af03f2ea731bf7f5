//! The error reference page in HTML.

use super::*;

const CSS: &str = "\
:root{color-scheme:light dark;--fg:#1f2328;--muted:#59636e;--bg:#fff;--line:#d1d9e0;--code:#f6f8fa;--accent:#0969da}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;--line:#3d444d;--code:#151b23;--accent:#4493f8}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.6 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif}
main{max-width:52rem;margin:0 auto;padding:2rem 1.25rem 4rem}
h1{font-size:2rem;margin:0 0 1rem}
h2{font-size:1.5rem;margin:2.5rem 0 1rem;padding-bottom:.3rem;border-bottom:1px solid var(--line)}
h3{font-size:1.25rem;margin:2.5rem 0 .75rem}
h4{font-size:1.05rem;margin:1.75rem 0 .5rem}
a{color:var(--accent);text-decoration:none}
a:hover{text-decoration:underline}
a.anchor{color:var(--muted);margin-left:.4rem;font-weight:normal}
code{font:.875em/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--code);padding:.1em .35em;border-radius:4px}
pre{background:var(--code);border:1px solid var(--line);border-radius:6px;padding:.9rem 1rem;overflow-x:auto}
pre code{padding:0;background:none}
table{border-collapse:collapse;width:100%;margin:1rem 0;font-size:.95rem}
th,td{border:1px solid var(--line);padding:.4rem .6rem;text-align:left;vertical-align:top}
th{background:var(--code)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:.75rem 0}
dt{font-weight:600;color:var(--muted)}
dd{margin:0}
section.errors>section{border-top:1px solid var(--line)}
article.entry{margin:0 0 1.5rem}
nav ul{columns:2;padding-left:1.2rem}
.meta{color:var(--muted);font-size:.95rem;margin-bottom:.25rem}
";

/// The error reference page as one self-contained HTML document: inline CSS (light and dark),
/// no script, no external asset.
///
/// Same layout as [`markdown`]. Every section has `id="<anchor>"` on its `<h3>` (the fragment of
/// its entries' `type_uri`), each code has `id="code-<code>"`, each id appears once, and all
/// catalog text is HTML-escaped (backtick spans become `<code>`).
pub fn html(catalog: &Catalog) -> String {
    let page = Page::new(catalog);
    let dialect = catalog.dialect();
    let name = html_escape(catalog.name());
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{name} error reference</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<main>\n\
         <h1>{name} error reference</h1>\n"
    );
    if !catalog.description().is_empty() {
        let _ = writeln!(out, "<p>{}</p>", html_inline(catalog.description()));
    }

    // Contents.
    let _ = writeln!(out, "<nav>\n<h2>Contents</h2>\n<ul>");
    let envelope_id = page.own_id("error-response-format");
    let summary_id = page.own_id("summary");
    if let Some(id) = envelope_id {
        let _ = writeln!(out, "<li><a href=\"#{id}\">Error response format</a></li>");
    }
    for section in &page.sections {
        let _ = writeln!(
            out,
            "<li><a href=\"#{}\">{}</a></li>",
            html_escape(section.anchor),
            html_inline(&section.heading)
        );
    }
    if let Some(id) = summary_id {
        let _ = writeln!(out, "<li><a href=\"#{id}\">Summary</a></li>");
    }
    let _ = writeln!(out, "</ul>\n</nav>");

    // Envelope.
    let (summary, members) = envelope(dialect);
    let _ = writeln!(out, "<section>\n<h2{}>Error response format</h2>", id_attr(envelope_id));
    let _ = writeln!(
        out,
        "<p>Every error response is sent with <code>Content-Type: {}</code> in the <code>{}</code> \
         envelope: {}</p>",
        dialect.content_type(),
        dialect.as_str(),
        html_inline(summary),
    );
    let _ = writeln!(
        out,
        "<table>\n<thead><tr><th>Member</th><th>Type</th><th>Description</th></tr></thead>\n<tbody>"
    );
    for (member, ty, text) in members {
        let _ = writeln!(
            out,
            "<tr><td><code>{member}</code></td><td>{ty}</td><td>{}</td></tr>",
            html_inline(text)
        );
    }
    let _ = writeln!(out, "</tbody>\n</table>");
    if let Some((e, ex)) = envelope_entry(catalog).and_then(|e| example(catalog, e).map(|x| (e, x))) {
        let _ = writeln!(
            out,
            "<p>For example, <a href=\"#code-{code}\"><code>{code}</code></a>:</p>",
            code = html_escape(&e.code)
        );
        let _ = writeln!(out, "<pre><code class=\"language-json\">{}</code></pre>", html_escape(&ex.body));
    }
    let _ = writeln!(out, "</section>");

    // Sections.
    let _ = writeln!(out, "<section class=\"errors\">\n<h2>Errors</h2>");
    for section in &page.sections {
        let anchor = html_escape(section.anchor);
        let _ = writeln!(
            out,
            "<section>\n<h3 id=\"{anchor}\">{}<a class=\"anchor\" href=\"#{anchor}\" \
             aria-label=\"Link to this section\">#</a></h3>",
            html_inline(&section.heading)
        );
        if let Some(s) = section.summary {
            let _ = writeln!(out, "<p>{}</p>", html_inline(s));
        }
        for item in &section.items {
            html_item(&mut out, catalog, item, section.sub_headings);
        }
        let _ = writeln!(out, "</section>");
    }
    let _ = writeln!(out, "</section>");

    // Summary.
    let _ = writeln!(
        out,
        "<section>\n<h2{}>Summary</h2>\n<table>\n<thead><tr><th>Code</th><th>Wire code</th>\
         <th>Status</th><th>Category</th><th>Retry</th></tr></thead>\n<tbody>",
        id_attr(summary_id)
    );
    for e in by_status(catalog) {
        let code = html_escape(&e.code);
        let wire = match wire_code(dialect, e) {
            Some((_, w)) => format!("<code>{}</code>", html_escape(w)),
            None => "—".to_owned(),
        };
        let _ = writeln!(
            out,
            "<tr><td><a href=\"#code-{code}\"><code>{code}</code></a></td><td>{wire}</td>\
             <td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            e.status.as_u16(),
            html_escape(&e.category),
            e.retry.as_str()
        );
    }
    let _ = writeln!(out, "</tbody>\n</table>\n</section>\n</main>\n</body>\n</html>");
    out
}

fn html_item(out: &mut String, catalog: &Catalog, item: &Item<'_>, sub_heading: bool) {
    let e = item.entry;
    let (first, rest) = match item.ids.split_first() {
        Some((first, rest)) => (Some(first.as_str()), rest),
        None => (None, &[][..]),
    };
    let _ = write!(out, "<article class=\"entry\"{}>", id_attr(first));
    for id in rest {
        let _ = write!(out, "<span id=\"{}\"></span>", html_escape(id));
    }
    out.push('\n');
    if sub_heading {
        let code = html_escape(&e.code);
        let _ = writeln!(
            out,
            "<h4><code>{code}</code><a class=\"anchor\" href=\"#code-{code}\" \
             aria-label=\"Link to this code\">#</a></h4>"
        );
    }
    let _ = writeln!(out, "<dl>");
    for (label, text) in facts(catalog.dialect(), e) {
        let _ = writeln!(out, "<dt>{label}</dt><dd>{}</dd>", html_inline(&text));
    }
    let _ = writeln!(out, "</dl>");
    if !item.also.is_empty() {
        let _ = writeln!(out, "<p>Also answers for:</p>\n<ul>");
        for (other, ids) in &item.also {
            let (first, rest) = match ids.split_first() {
                Some((first, rest)) => (Some(first.as_str()), rest),
                None => (None, &[][..]),
            };
            let _ = write!(out, "<li{}>", id_attr(first));
            for id in rest {
                let _ = write!(out, "<span id=\"{}\"></span>", html_escape(id));
            }
            let _ =
                writeln!(out, "<code>{}</code>: {}</li>", html_escape(&other.code), html_inline(&other.when));
        }
        let _ = writeln!(out, "</ul>");
    }
    if let Some(ex) = example(catalog, e) {
        let _ = write!(out, "<p class=\"meta\">Example response: <code>{}</code>", html_escape(&ex.status));
        for (name, value) in &ex.headers {
            let _ = write!(out, ", <code>{}: {}</code>", html_escape(name), html_escape(value));
        }
        let _ = writeln!(out, "</p>");
        let _ = writeln!(out, "<pre><code class=\"language-json\">{}</code></pre>", html_escape(&ex.body));
    }
    let _ = writeln!(out, "</article>");
}

fn id_attr(id: Option<&str>) -> String {
    match id {
        Some(id) => format!(" id=\"{}\"", html_escape(id)),
        None => String::new(),
    }
}

/// Catalog inline text as HTML: escaped, with backtick spans as `<code>`.
fn html_inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for part in split_code(text) {
        match part {
            Span::Code(code) => {
                out.push_str("<code>");
                out.push_str(&html_escape(code));
                out.push_str("</code>");
            }
            Span::Text(t) => out.push_str(&html_escape(t)),
        }
    }
    out
}
