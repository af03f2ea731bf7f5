//! Organisations, users, password logins and sessions.

mod support;

use std::time::Duration;

use rebuff_sqlite::{Error, LoginOutcome};
use rebuff_store::key::hash_secret;
use rebuff_store::{AccountStore, SessionStore};

#[tokio::test]
async fn organisations_have_unique_names() {
    let (_dir, store) = support::fresh("orgs");
    let acme = store.create_org("acme").await.expect("org");
    assert!(acme.id.starts_with("org_") && acme.id.len() == 16, "{}", acme.id);
    assert!(acme.id[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
    let err = store.create_org("acme").await.expect_err("duplicate");
    assert_eq!(err, Error::OrgNameTaken);
    assert!(err.is_conflict());
    assert_eq!(store.create_org("  ").await, Err(Error::Invalid("name")));
    assert_eq!(store.get_or_create_org("acme").await.expect("existing"), acme);
    let created = store.get_or_create_org("beta").await.expect("created");
    assert_ne!(created.id, acme.id);
    assert_eq!(store.find_org("beta").await.expect("find"), Some(created.clone()));
    assert_eq!(store.get_org(&created.id).await.expect("get"), Some(created));
    assert_eq!(store.find_org("nobody").await.expect("find"), None);
}

#[tokio::test]
async fn login_checks_the_password_and_reports_a_disabled_account_only_to_its_owner() {
    let (dir, store) = support::fresh("login");
    let org = store.create_org("acme").await.expect("org");
    let ann = store.create_user(&org.id, "Ann@Example.com", "correct horse", false).await.expect("user");
    assert!(ann.id.starts_with("usr_"));
    assert_eq!(
        (ann.org_id.as_str(), ann.email.as_str(), ann.disabled),
        (org.id.as_str(), "Ann@Example.com", false)
    );
    let bob = store.create_user(&org.id, "bob@example.com", "battery staple", true).await.expect("user");

    // Right password; the email ignores case.
    assert_eq!(
        store.verify_login("ann@example.COM", "correct horse").await.expect("login"),
        LoginOutcome::Ok(ann.clone())
    );
    assert_eq!(
        store.verify_login("ann@example.com", "wrong").await.expect("login"),
        LoginOutcome::UnknownOrWrongPassword
    );
    assert_eq!(
        store.verify_login("nobody@example.com", "correct horse").await.expect("login"),
        LoginOutcome::UnknownOrWrongPassword
    );
    // A disabled account is told apart only with its password.
    assert_eq!(
        store.verify_login("bob@example.com", "battery staple").await.expect("login"),
        LoginOutcome::Disabled(bob.clone())
    );
    assert_eq!(
        store.verify_login("bob@example.com", "wrong").await.expect("login"),
        LoginOutcome::UnknownOrWrongPassword
    );
    assert!(store.set_user_disabled(&bob.id, false).await.expect("enable"));
    assert!(matches!(
        store.verify_login("bob@example.com", "battery staple").await.expect("login"),
        LoginOutcome::Ok(user) if user.id == bob.id && !user.disabled
    ));
    assert!(!store.set_user_disabled("usr_nosuchuser0", true).await.expect("no user"));

    // Passwords are stored as Argon2id PHC strings, never as given.
    let bytes = support::all_bytes(&dir.db());
    assert!(!support::contains(&bytes, b"correct horse"));
    assert!(support::contains(&bytes, b"$argon2id$v=19$"));
}

#[tokio::test]
async fn emails_are_unique_ignoring_case() {
    let (_dir, store) = support::fresh("emails");
    let org = store.create_org("acme").await.expect("org");
    store.create_user(&org.id, "ann@example.com", "pw", false).await.expect("user");
    let err = store.create_user(&org.id, "ANN@example.com", "pw", false).await.expect_err("duplicate");
    assert_eq!(err, Error::EmailTaken);
    assert!(err.is_conflict());
    assert_eq!(
        store.create_user("org_nosuchorg000", "x@example.com", "pw", false).await,
        Err(Error::OrgNotFound)
    );
    assert_eq!(store.create_user(&org.id, " ", "pw", false).await, Err(Error::Invalid("email")));
}

#[tokio::test]
async fn sessions_store_hashes_and_carry_the_user_state() {
    let (dir, store) = support::fresh("sessions");
    let org = store.create_org("acme").await.expect("org");
    let ann = store.create_user(&org.id, "ann@example.com", "pw", false).await.expect("user");
    let (token, csrf) = store.create_session(&ann.id, Duration::from_secs(3600)).await.expect("session");
    assert_ne!(token, csrf);
    assert!(token.len() >= 32 && csrf.len() >= 32);

    let hash = hash_secret(&token);
    let session = store.find_session(&hash).await.expect("find").expect("the session exists");
    assert_eq!(session.token_hash, hash);
    assert_eq!(session.user_id, ann.id);
    assert_eq!(session.org_id, org.id);
    assert_eq!(session.csrf_hash, hash_secret(&csrf));
    assert!(!session.user_disabled);
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    assert!((now + 3590..=now + 3610).contains(&session.expires_at), "{}", session.expires_at);
    assert_eq!(store.find_session(&hash_secret("not a token")).await.expect("find"), None);

    let bytes = support::all_bytes(&dir.db());
    assert!(!support::contains(&bytes, token.as_bytes()), "the session token is stored");
    assert!(!support::contains(&bytes, csrf.as_bytes()), "the CSRF token is stored");

    // Disabling the user shows on the session at once.
    store.set_user_disabled(&ann.id, true).await.expect("disable");
    assert!(store.find_session(&hash).await.expect("find").expect("session").user_disabled);

    // An expired session is still found (the layer answers `session_expired`), until purged.
    let (old, _) = store.create_session(&ann.id, Duration::ZERO).await.expect("session");
    let expired = store.find_session(&hash_secret(&old)).await.expect("find").expect("session");
    assert!(expired.expires_at <= now + 1);
    assert!(store.purge_expired().await.expect("purge") >= 1);
    assert_eq!(store.find_session(&hash_secret(&old)).await.expect("find"), None);
    assert!(store.find_session(&hash).await.expect("find").is_some(), "a live session was purged");

    assert!(store.delete_session(&hash).await.expect("logout"));
    assert!(!store.delete_session(&hash).await.expect("logout again"));
    assert_eq!(store.find_session(&hash).await.expect("find"), None);

    assert_eq!(
        store.create_session("usr_nosuchuser0", Duration::from_secs(60)).await,
        Err(Error::UserNotFound)
    );
}
