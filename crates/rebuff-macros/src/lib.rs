//! Compile-time typed error codes for rebuff.
//!
//! Use this crate through the `rebuff` facade: `rebuff::catalog!(pub Code = "errors.toml");`
//! reads the catalog while the crate compiles and generates an enum with one variant per
//! stable code, so a code that is not in the catalog cannot be named, and a catalog that does
//! not load is a compile error. The generated code names items through `::rebuff`, so the
//! invoking crate must depend on `rebuff`.

use std::collections::HashMap;
use std::path::PathBuf;

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use rebuff_core::{Catalog, RetryClass};
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Ident, LitStr, Token, Visibility};

/// Generates a typed error code enum from a catalog file.
///
/// ```text
/// rebuff::catalog!(pub Code = "errors.toml");
/// ```
///
/// The input is optional outer attributes (put on the enum), a visibility, the enum's name,
/// `=` and the catalog's path. The path is relative to the invoking crate's
/// `CARGO_MANIFEST_DIR`; when no file exists there, it is tried relative to the directory of
/// the source file that invokes the macro (as `include_str!` does). `"builtin:standard"` (or
/// `"builtin:arize"`, ...) names a catalog built into `rebuff-core` instead of a file. The
/// catalog may be a base catalog, one that extends another and adds codes, or a profile: the
/// variants are all its stable codes, inherited ones included, in catalog order, in
/// `UpperCamelCase` (`api_key_missing` is `ApiKeyMissing`).
///
/// The enum derives `Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord`, is
/// `#[non_exhaustive]`, and has `ALL`, `as_str`, `status`, `retry`, `from_code` and
/// `problem`; it implements `rebuff::ErrorCode`, `Display`, `FromStr` (with
/// `rebuff::UnknownCode` as the error) and `Into<rebuff::Problem>`. The methods have the
/// enum's visibility. Editing the catalog file, or a file it extends, rebuilds the invoking
/// crate.
#[proc_macro]
pub fn catalog(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as Input);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

struct Input {
    attrs: Vec<Attribute>,
    vis: Visibility,
    name: Ident,
    path: LitStr,
}

impl Parse for Input {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let name: Ident = input.parse()?;
        input.parse::<Token![=]>()?;
        let path: LitStr = input.parse()?;
        if input.peek(Token![;]) {
            input.parse::<Token![;]>()?;
        } else if input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
        }
        if !input.is_empty() {
            return Err(input.error("expected `VIS NAME = \"path/to/catalog.toml\"`"));
        }
        Ok(Input { attrs, vis, name, path })
    }
}

/// Finds the catalog file: relative to `CARGO_MANIFEST_DIR`, else to the invoking file.
fn resolve(lit: &LitStr) -> syn::Result<PathBuf> {
    let written = lit.value();
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_default();
    let primary = manifest_dir.join(&written);
    if primary.is_file() {
        return Ok(primary);
    }
    let beside_source = proc_macro::Span::call_site()
        .local_file()
        .and_then(|file| file.parent().map(|dir| dir.join(&written)))
        .filter(|p| p.is_file());
    if let Some(path) = beside_source {
        return Ok(path);
    }
    Err(syn::Error::new(
        lit.span(),
        format!(
            "catalog file `{written}` not found (the path is relative to CARGO_MANIFEST_DIR, {})",
            manifest_dir.display()
        ),
    ))
}

/// Loads the catalog named by the invocation: a built-in one (`"builtin:standard"`), or a
/// file. Also returns the files to track, so that editing any of them rebuilds the invoking
/// crate (a built-in catalog is part of `rebuff-core`, which cargo already tracks).
fn load(lit: &LitStr) -> syn::Result<(Catalog, Vec<PathBuf>)> {
    let written = lit.value();
    if let Some(name) = written.strip_prefix("builtin:") {
        let catalog = Catalog::builtin(name)
            .ok_or_else(|| syn::Error::new(lit.span(), format!("no built-in catalog `{name}`")))?;
        return Ok((catalog.clone(), Vec::new()));
    }
    let path = resolve(lit)?;
    let catalog = Catalog::from_path(&path).map_err(|err| {
        // Show the path as written in the invocation rather than the resolved one.
        let shown = err.to_string();
        let origin = path.display().to_string();
        let shown = match shown.strip_prefix(&origin) {
            Some(rest) => format!("{written}{rest}"),
            None => shown,
        };
        syn::Error::new(lit.span(), format!("invalid catalog: {shown}"))
    })?;
    let files = catalog
        .source_files()
        .iter()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .collect();
    Ok((catalog, files))
}

fn expand(input: &Input) -> syn::Result<TokenStream2> {
    let Input { attrs, vis, name, path: lit } = input;
    let written = lit.value();
    let (catalog, files) = load(lit)?;

    let mut variants = Vec::new();
    let mut seen: HashMap<String, &str> = HashMap::new();
    for entry in catalog.entries() {
        let camel = upper_camel(&entry.code);
        if let Some(other) = seen.insert(camel.clone(), &entry.code) {
            return Err(syn::Error::new(
                lit.span(),
                format!("codes `{other}` and `{}` both give the variant name `{camel}`", entry.code),
            ));
        }
        let ident = syn::parse_str::<Ident>(&camel).map_err(|_| {
            syn::Error::new(
                lit.span(),
                format!("code `{}` gives `{camel}`, which is not a valid variant name", entry.code),
            )
        })?;
        variants.push(ident);
    }

    let docs: Vec<String> = catalog
        .entries()
        .iter()
        .map(|e| {
            format!(
                "**{}** (HTTP {}, `{}`, retry: `{}`)\n\n{}",
                rebuff_core::docs::rustdoc_line(&e.title),
                e.status.as_u16(),
                e.code,
                e.retry,
                rebuff_core::docs::rustdoc_line(&e.when)
            )
        })
        .collect();
    let codes: Vec<&str> = catalog.entries().iter().map(|e| e.code.as_str()).collect();
    let statuses: Vec<u16> = catalog.entries().iter().map(|e| e.status.as_u16()).collect();
    let retries: Vec<TokenStream2> = catalog.entries().iter().map(|e| retry_tokens(e.retry)).collect();

    let enum_doc = format!(
        "The error codes of the `{}` catalog (`{}`), one variant per stable code.\n\n\
         Generated by `rebuff::catalog!`: a code that is not in the catalog cannot be named.",
        catalog.name(),
        written.replace('`', "'")
    );
    let all_doc = format!("Every code of the `{}` catalog, in catalog order.", catalog.name());
    let includes = files
        .iter()
        .map(|file| {
            let text = file.to_str().ok_or_else(|| {
                syn::Error::new(lit.span(), "the catalog's path is not valid UTF-8, so it cannot be tracked")
            })?;
            Ok(LitStr::new(text, Span::call_site()))
        })
        .collect::<syn::Result<Vec<_>>>()?;

    Ok(quote! {
        #[doc = #enum_doc]
        #(#attrs)*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        #vis enum #name {
            #(
                #[doc = #docs]
                #variants,
            )*
        }

        // Rebuild the invoking crate whenever the catalog, or one it extends, changes.
        #(const _: &str = include_str!(#includes);)*

        impl #name {
            #[doc = #all_doc]
            #vis const ALL: &'static [#name] = &[#(#name::#variants),*];

            /// The stable code, as written in the catalog.
            #vis const fn as_str(self) -> &'static str {
                match self {
                    #(#name::#variants => #codes,)*
                }
            }

            /// The HTTP status this code is answered with.
            #vis const fn status(self) -> u16 {
                match self {
                    #(#name::#variants => #statuses,)*
                }
            }

            /// When a client may send the same request again.
            #vis const fn retry(self) -> ::rebuff::RetryClass {
                match self {
                    #(#name::#variants => #retries,)*
                }
            }

            /// The code whose stable spelling is `code`, if the catalog has it.
            #vis fn from_code(code: &str) -> ::core::option::Option<#name> {
                match code {
                    #(#codes => ::core::option::Option::Some(#name::#variants),)*
                    _ => ::core::option::Option::None,
                }
            }

            /// A new occurrence of this error, to fill in and render.
            #vis fn problem(self) -> ::rebuff::Problem {
                ::rebuff::Problem::new(self)
            }
        }

        impl ::rebuff::ErrorCode for #name {
            fn as_str(&self) -> &'static str {
                #name::as_str(*self)
            }
        }

        impl ::core::fmt::Display for #name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(#name::as_str(*self))
            }
        }

        impl ::core::str::FromStr for #name {
            type Err = ::rebuff::UnknownCode;

            fn from_str(code: &str) -> ::core::result::Result<Self, Self::Err> {
                #name::from_code(code).ok_or_else(|| ::rebuff::UnknownCode::new(code))
            }
        }

        impl ::core::convert::From<#name> for ::rebuff::Problem {
            fn from(code: #name) -> Self {
                ::rebuff::Problem::new(code)
            }
        }
    })
}

fn retry_tokens(retry: RetryClass) -> TokenStream2 {
    let variant = match retry {
        RetryClass::Never => "Never",
        RetryClass::AfterReauth => "AfterReauth",
        RetryClass::AfterFix => "AfterFix",
        RetryClass::Backoff => "Backoff",
        RetryClass::RetryAfter => "RetryAfter",
    };
    let variant = format_ident!("{}", variant);
    quote!(::rebuff::RetryClass::#variant)
}

/// `api_key_missing` → `ApiKeyMissing`.
fn upper_camel(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    for word in code.split('_').filter(|w| !w.is_empty()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}
