//! The error reference page in HTML.

use super::*;

/// The page's style sheet. Inline, so the page is one file; allowed by its hash in
/// [`html_content_security_policy`].
const CSS: &str = "\
:root{color-scheme:light dark;--fg:#1f2328;--muted:#59636e;--bg:#fff;--line:#d1d9e0;--code:#f6f8fa;--accent:#0969da;--mark:#fff8c5}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;--line:#3d444d;--code:#151b23;--accent:#4493f8;--mark:#3b2e00}}
*{box-sizing:border-box}
html{scroll-padding-top:4.5rem}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.6 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;overflow-wrap:break-word}
.bar{position:sticky;top:0;z-index:1;display:flex;flex-wrap:wrap;align-items:center;gap:.25rem 1rem;padding:.5rem 1rem;background:var(--bg);border-bottom:1px solid var(--line)}
.bar .home{font-weight:600;color:var(--fg)}
.bar ul{display:flex;flex-wrap:wrap;gap:0 .9rem;margin:0;padding:0;list-style:none}
.bar input{flex:1 1 12rem;min-width:0;max-width:24rem;font:inherit;padding:.3rem .6rem;color:var(--fg);background:var(--code);border:1px solid var(--line);border-radius:6px}
.layout{display:block;max-width:80rem;margin:0 auto}
.toc{display:none}
main{min-width:0;max-width:52rem;margin:0 auto;padding:1.5rem 1rem 4rem}
@media (min-width:64rem){.layout{display:grid;grid-template-columns:17rem minmax(0,1fr);gap:2rem}
.toc{display:block;position:sticky;top:3.2rem;align-self:start;max-height:calc(100vh - 3.2rem);overflow-y:auto;padding:1.5rem 0 2rem 1rem;font-size:.9rem}
.toc ul{list-style:none;margin:0;padding-left:.8rem}.toc>ul{padding-left:0}.toc li{margin:.1rem 0}
.toc .class>a{font-weight:600}.toc .cat>a{color:var(--muted)}
main{max-width:56rem;margin:0;padding:1.5rem 1.5rem 4rem}}
h1{font-size:2rem;line-height:1.25;margin:0 0 1rem}
h2{font-size:1.5rem;margin:2.5rem 0 1rem;padding-bottom:.3rem;border-bottom:1px solid var(--line)}
h3{font-size:1.2rem;margin:2rem 0 .5rem;color:var(--muted)}
h4{font-size:1.15rem;margin:2rem 0 .75rem}
h5{font-size:1.05rem;margin:1.5rem 0 .5rem}
a{color:var(--accent);text-decoration:none}
a:hover{text-decoration:underline}
a.anchor{color:var(--muted);margin-left:.4rem;font-weight:normal}
code{font:.875em/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--code);padding:.1em .35em;border-radius:4px;overflow-wrap:anywhere}
pre{background:var(--code);border:1px solid var(--line);border-radius:6px;padding:.75rem .9rem;white-space:pre-wrap;overflow-wrap:anywhere}
pre code{padding:0;background:none}
table{border-collapse:collapse;width:100%;margin:1rem 0;font-size:.95rem}
th,td{border:1px solid var(--line);padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:var(--code)}
td code{overflow-wrap:normal}
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.3rem 1rem;margin:.75rem 0}
dt{font-weight:600;color:var(--muted)}
dd{margin:0;min-width:0}
article.entry{margin:0 0 1.5rem}
section.anchor{border-top:1px solid var(--line)}
h4:target,li:target{background:var(--mark)}
article.entry:target,section.anchor:target{border-left:3px solid var(--accent);padding-left:.75rem}
.meta{color:var(--muted);font-size:.95rem;margin-bottom:.25rem}
@media (max-width:40rem){html{scroll-padding-top:7.5rem}h1{font-size:1.6rem}.wide{display:none}dl{grid-template-columns:minmax(0,1fr);gap:0}dd{margin-bottom:.5rem}}
@media print{.bar,.toc{display:none}.layout{display:block}main{max-width:none;padding:0}a{color:inherit}article.entry,tr{break-inside:avoid}h2,h3,h4{break-after:avoid}.wide{display:table-cell}}
";

/// The filter box's behaviour: hides entries, summary rows and contents links whose words do
/// not contain the text typed, and the groups left empty. The box is `hidden` in the markup and
/// shown by the script, so a reader without script sees the whole page and no dead control.
/// Inline, allowed by its hash in [`html_content_security_policy`].
const SCRIPT: &str = "\
const box=document.getElementById('filter');box.hidden=false;
box.addEventListener('input',()=>{const q=box.value.trim().toLowerCase();
for(const e of document.querySelectorAll('[data-words]'))e.hidden=q!==''&&!e.dataset.words.includes(q);
for(const g of document.querySelectorAll('[data-group]'))g.hidden=q!==''&&!g.querySelector('[data-words]:not([hidden])');});
";

/// `sha256-<base64>` of a script or style element's exact text, as CSP source expressions
/// spell a hash.
fn csp_hash(text: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text)))
}

/// The `Content-Security-Policy` to send with [`html`]: nothing may load, and only the page's
/// own inline style and script run, by their SHA-256 hashes (computed from the text the page
/// embeds, so they cannot drift from it). No frames, no forms, no base URI.
///
/// ```
/// let csp = rebuff_core::docs::html_content_security_policy();
/// assert!(csp.starts_with("default-src 'none'; style-src 'sha256-"));
/// ```
pub fn html_content_security_policy() -> &'static str {
    static POLICY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| {
        format!(
            "default-src 'none'; style-src {}; script-src {}; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'",
            csp_hash(CSS),
            csp_hash(SCRIPT)
        )
    })
}

/// A page section grouped under its status class and category.
struct Group<'p, 'a> {
    /// 4 or 5.
    class: u16,
    category: &'a str,
    sections: Vec<&'p Section<'a>>,
}

/// Sections by status class, then by category (in order of their lowest status), keeping the
/// status order within a category. A section whose entries differ in category (one anchor per
/// status) goes under its most frequent one, the first on a tie.
fn groups<'p, 'a>(page: &'p Page<'a>) -> Vec<Group<'p, 'a>> {
    let mut out: Vec<Group<'p, 'a>> = Vec::new();
    for section in &page.sections {
        let categories: Vec<&'a str> = section.items.iter().map(|i| i.entry.category.as_str()).collect();
        let category = categories
            .iter()
            .copied()
            .max_by_key(|c| {
                let first = categories.iter().position(|x| x == c).unwrap_or(0);
                (categories.iter().filter(|x| *x == c).count(), std::cmp::Reverse(first))
            })
            .unwrap_or_default();
        let class = section.items.iter().map(|i| i.entry.status.as_u16()).min().unwrap_or(400) / 100;
        match out.iter_mut().find(|g| g.class == class && g.category == category) {
            Some(g) => g.sections.push(section),
            None => out.push(Group { class, category, sections: vec![section] }),
        }
    }
    out.sort_by_key(|g| g.class);
    out
}

fn class_title(class: u16) -> &'static str {
    if class == 4 { "Client errors (4xx)" } else { "Server errors (5xx)" }
}

/// An identifier escaped, with a line-break opportunity after each `_`, so that narrow table
/// cells wrap `invalid_request_error` between its words, never inside one.
fn breakable(identifier: &str) -> String {
    html_escape(identifier).replace('_', "_<wbr>")
}

/// The words the filter box matches an entry on: code, wire code, status, category, title.
fn words(dialect: Dialect, e: &Entry) -> String {
    let wire = wire_code(dialect, e).map(|(_, w)| w).unwrap_or_default();
    html_escape(&format!("{} {wire} {} {} {}", e.code, e.status.as_u16(), e.category, e.title).to_lowercase())
}

/// The error reference page as one self-contained HTML document: inline CSS (light and dark,
/// print) and a few lines of inline script for the filter box, nothing from elsewhere. Serve
/// it with [`html_content_security_policy`].
///
/// Layout: a sticky bar (title, links to the parts, the filter box), contents grouped by
/// status class and category in a sticky side column on wide screens, then the summary table
/// (every code, linked), the envelope, and the errors grouped the same way. Every section has
/// `id="<anchor>"` on its heading (the fragment of its entries' `type_uri`), each code has
/// `id="code-<code>"`, each id appears once, and all catalog text is HTML-escaped (backtick
/// spans become `<code>`). Where no code is renamed on the wire, the wire code is not shown
/// beside the stable code. Without script the page reads the same, without the filter.
pub fn html(catalog: &Catalog) -> String {
    let page = Page::new(catalog);
    let dialect = catalog.dialect();
    let renames = renames_codes(catalog);
    let groups = groups(&page);
    let name = html_escape(catalog.name());
    let free = |id: String| (!page.used.contains(&id)).then_some(id);
    let envelope_id = page.own_id("error-response-format");
    let summary_id = page.own_id("summary");
    let class_ids: Vec<(u16, Option<String>)> = [4, 5]
        .into_iter()
        .filter(|c| groups.iter().any(|g| g.class == *c))
        .map(|c| (c, free(if c == 4 { "client-errors" } else { "server-errors" }.to_owned())))
        .collect();
    let class_id = |c: u16| class_ids.iter().find(|(x, _)| *x == c).and_then(|(_, id)| id.clone());
    let category_id = |g: &Group<'_, '_>| free(format!("category-{}xx-{}", g.class, g.category));
    let link = |id: Option<&str>, text: &str| match id {
        Some(id) => format!("<a href=\"#{id}\">{text}</a>"),
        None => text.to_owned(),
    };

    let mut out = String::with_capacity(96 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{name} error reference</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
    );

    // The sticky bar: where am I, the parts, the filter.
    let _ = writeln!(out, "<header class=\"bar\">\n<a class=\"home\" href=\"#\">{name} errors</a>");
    let _ = writeln!(out, "<nav aria-label=\"Parts\"><ul>");
    if let Some(id) = summary_id {
        let _ = writeln!(out, "<li><a href=\"#{id}\">Summary</a></li>");
    }
    if let Some(id) = envelope_id {
        let _ = writeln!(out, "<li><a href=\"#{id}\">Format</a></li>");
    }
    for (class, id) in &class_ids {
        if let Some(id) = id {
            let _ = writeln!(out, "<li><a href=\"#{id}\">{class}xx</a></li>");
        }
    }
    let _ = writeln!(out, "</ul></nav>");
    let _ = writeln!(
        out,
        "<input id=\"filter\" type=\"search\" placeholder=\"Filter by code, status, category…\" \
         aria-label=\"Filter the errors\" autocomplete=\"off\" hidden>\n</header>"
    );

    // Contents: class, category, section.
    let _ = writeln!(out, "<div class=\"layout\">\n<nav class=\"toc\" aria-label=\"Contents\">\n<ul>");
    if let Some(id) = summary_id {
        let _ = writeln!(out, "<li><a href=\"#{id}\">Summary</a></li>");
    }
    if let Some(id) = envelope_id {
        let _ = writeln!(out, "<li><a href=\"#{id}\">Error response format</a></li>");
    }
    for (class, _) in &class_ids {
        let _ = writeln!(
            out,
            "<li class=\"class\" data-group>{}\n<ul>",
            link(class_id(*class).as_deref(), class_title(*class))
        );
        for g in groups.iter().filter(|g| g.class == *class) {
            let _ = writeln!(
                out,
                "<li class=\"cat\" data-group>{}\n<ul>",
                link(category_id(g).as_deref(), &html_escape(g.category))
            );
            for section in &g.sections {
                let words: Vec<String> = section.items.iter().map(|i| words(dialect, i.entry)).collect();
                let _ = writeln!(
                    out,
                    "<li data-words=\"{}\"><a href=\"#{}\">{}</a></li>",
                    words.join(" "),
                    html_escape(section.anchor),
                    html_inline(&section.heading)
                );
            }
            let _ = writeln!(out, "</ul></li>");
        }
        let _ = writeln!(out, "</ul></li>");
    }
    let _ = writeln!(out, "</ul>\n</nav>");

    let _ = writeln!(out, "<main>\n<h1>{name} error reference</h1>");
    if !catalog.description().is_empty() {
        let _ = writeln!(out, "<p>{}</p>", html_inline(catalog.description()));
    }

    // Summary first: every code, linked, by status.
    let _ = writeln!(
        out,
        "<section data-group>\n<h2{}>Summary</h2>\n<table>\n<thead><tr><th>Code</th>",
        id_attr(summary_id)
    );
    if renames {
        let _ = write!(out, "<th class=\"wide\">Wire code</th>");
    }
    let _ = writeln!(
        out,
        "<th>Status</th><th class=\"wide\">Category</th><th class=\"wide\">Retry</th></tr></thead>\n<tbody>"
    );
    for e in by_status(catalog) {
        let code = html_escape(&e.code);
        let _ = write!(
            out,
            "<tr data-words=\"{}\"><td><a href=\"#code-{code}\"><code>{}</code></a></td>",
            words(dialect, e),
            breakable(&e.code)
        );
        if renames {
            let wire = match wire_code(dialect, e) {
                Some((_, w)) => format!("<code>{}</code>", breakable(w)),
                None => "—".to_owned(),
            };
            let _ = write!(out, "<td class=\"wide\">{wire}</td>");
        }
        let _ = writeln!(
            out,
            "<td>{}</td><td class=\"wide\"><code>{}</code></td><td class=\"wide\"><code>{}</code></td></tr>",
            e.status.as_u16(),
            breakable(&e.category),
            breakable(e.retry.as_str())
        );
    }
    let _ = writeln!(out, "</tbody>\n</table>\n</section>");

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

    // Errors, grouped as the contents are.
    for (class, _) in &class_ids {
        let _ = writeln!(
            out,
            "<section class=\"class\" data-group>\n<h2{}>{}</h2>",
            id_attr(class_id(*class).as_deref()),
            class_title(*class)
        );
        for g in groups.iter().filter(|g| g.class == *class) {
            let _ = writeln!(
                out,
                "<section class=\"category\" data-group>\n<h3{}>{}</h3>",
                id_attr(category_id(g).as_deref()),
                html_escape(g.category)
            );
            for section in &g.sections {
                html_section(&mut out, catalog, section, renames);
            }
            let _ = writeln!(out, "</section>");
        }
        let _ = writeln!(out, "</section>");
    }
    let _ = writeln!(out, "</main>\n</div>\n<script>{SCRIPT}</script>\n</body>\n</html>");
    out
}

fn html_section(out: &mut String, catalog: &Catalog, section: &Section<'_>, renames: bool) {
    let anchor = html_escape(section.anchor);
    // A section of one entry carries the entry's ids itself, so that a link to the code
    // scrolls to the section's heading rather than just below it.
    let own: &[String] = match section.items.as_slice() {
        [item] if !section.sub_headings => &item.ids,
        _ => &[],
    };
    let _ = write!(out, "<section class=\"anchor\"{} data-group>", id_attr(own.first().map(String::as_str)));
    for id in own.iter().skip(1) {
        let _ = write!(out, "<span id=\"{}\"></span>", html_escape(id));
    }
    let _ = writeln!(
        out,
        "\n<h4 id=\"{anchor}\">{}<a class=\"anchor\" href=\"#{anchor}\" \
         aria-label=\"Link to this section\">#</a></h4>",
        html_inline(&section.heading)
    );
    if let Some(s) = section.summary {
        let _ = writeln!(out, "<p>{}</p>", html_inline(s));
    }
    for item in &section.items {
        html_item(out, catalog, item, section.sub_headings, own.is_empty(), renames);
    }
    let _ = writeln!(out, "</section>");
}

fn html_item(
    out: &mut String,
    catalog: &Catalog,
    item: &Item<'_>,
    sub_heading: bool,
    with_ids: bool,
    renames: bool,
) {
    let e = item.entry;
    let ids: &[String] = if with_ids { &item.ids } else { &[] };
    let (first, rest) = match ids.split_first() {
        Some((first, rest)) => (Some(first.as_str()), rest),
        None => (None, &[][..]),
    };
    let _ = write!(
        out,
        "<article class=\"entry\"{} data-words=\"{}\">",
        id_attr(first),
        words(catalog.dialect(), e)
    );
    for id in rest {
        let _ = write!(out, "<span id=\"{}\"></span>", html_escape(id));
    }
    out.push('\n');
    if sub_heading {
        let code = html_escape(&e.code);
        let _ = writeln!(
            out,
            "<h5><code>{code}</code><a class=\"anchor\" href=\"#code-{code}\" \
             aria-label=\"Link to this code\">#</a></h5>"
        );
    }
    let _ = writeln!(out, "<dl>");
    for (label, text) in facts(catalog.dialect(), e, renames) {
        let _ = writeln!(out, "<dt>{label}</dt><dd>{}</dd>", html_inline(&text));
    }
    if let Some(names) = crate::sdk::class_names(catalog, &e.code) {
        let text = format!("Python `{}`, TypeScript `{}`", names.python, names.typescript);
        let _ = writeln!(out, "<dt>SDK class</dt><dd>{}</dd>", html_inline(&text));
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
