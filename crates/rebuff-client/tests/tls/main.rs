//! `https://` APIs: rustls with the webpki roots by default, a private CA through the
//! `reqwest::Client` the client is given.

mod server;

use axum::response::IntoResponse;
use rebuff::{Catalog, Problem};
use rebuff_client::{Client, Contract};

/// An API whose every answer is `resource_not_found` in the rebuff profile.
fn app() -> axum::Router {
    axum::Router::new().fallback(|| async {
        let catalog = Catalog::builtin("rebuff").expect("built in");
        let res = catalog
            .render(&Problem::dynamic("resource_not_found").detail("Project 'x' was not found."))
            .expect("renders");
        let (parts, body) = res.into_parts();
        (parts.status, parts.headers, body).into_response()
    })
}

#[tokio::test]
async fn a_private_ca_is_trusted_when_given_and_only_then() {
    let server = server::serve_https(app()).await;
    let url = format!("{}/v1/projects/x", server.base);

    // The default client knows the webpki roots only: the handshake fails, as a connection error.
    let client = Client::builder().contract(Contract::builtin("rebuff").expect("built in")).build();
    let err = client.send(client.get(&url)).await.err().unwrap_or_else(|| panic!("unknown CA trusted"));
    assert!(err.is_connect(), "{err:?}");

    // Trusting the CA: the API's error arrives over TLS and decodes to its code.
    let ca = reqwest::Certificate::from_pem(server.ca_pem.as_bytes()).expect("PEM");
    let http = reqwest::Client::builder().add_root_certificate(ca).build().expect("client");
    let client =
        Client::builder().http(http).contract(Contract::builtin("rebuff").expect("built in")).build();
    let err = client.send(client.get(&url)).await.err().unwrap_or_else(|| panic!("a 404 was a success"));
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404), "{err:?}");
    assert_eq!(err.stable_code(), Some("resource_not_found"));
    assert_eq!(err.message(), Some("Project 'x' was not found."));
}
