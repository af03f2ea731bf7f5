//! `rebuff users create`: a user who can sign in at `/v1/auth/login`. The password is read
//! from standard input so it never appears in the shell history or the process list.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::Context;

/// Manage users.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Create a user; reads the password (at least 8 characters) from standard input.
    Create(CreateArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    accounts: super::AccountsArgs,
    /// The organisation (created if it does not exist).
    #[arg(long)]
    org: String,
    /// The user's email.
    #[arg(long)]
    email: String,
    /// Create the account disabled (its logins are refused).
    #[arg(long)]
    disabled: bool,
}

/// The shortest password accepted.
const MIN_PASSWORD: usize = 8;

pub(crate) fn run(command: &Command) -> anyhow::Result<ExitCode> {
    let Command::Create(a) = command;
    if !a.email.contains('@') {
        return Err(anyhow::anyhow!("`{}` is not an email address", a.email));
    }
    let mut password = String::new();
    std::io::stdin().lock().read_line(&mut password).context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.chars().count() < MIN_PASSWORD {
        return Err(anyhow::anyhow!(
            "the password must be at least {MIN_PASSWORD} characters (read from standard input)"
        ));
    }
    let rt =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    rt.block_on(async {
        let store = a.accounts.open().await?;
        let org = store.get_or_create_org(&a.org).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        match store.create_user(&org.id, &a.email, password, a.disabled).await {
            Ok(user) => {
                println!(
                    "created user {} ({}) in `{}`{}",
                    user.email,
                    user.id,
                    a.org,
                    if a.disabled { ", disabled" } else { "" }
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) if e.is_conflict() => {
                Err(super::failure(format!("a user with email `{}` already exists", a.email)))
            }
            Err(e) => Err(anyhow::anyhow!("{e}")),
        }
    })
}
