//! Verbs that talk to a registry only: login, logout, tags, catalog,
//! manifest, digest, delete, and inspect.

use super::{reference, CliError, Context};
use clap::Args;
use rctl::credentials::{Credential, CredentialStore};
use rctl::distribution::{ApiError, Registry};
use serde_json::{json, Value};
use std::io::Read;

#[derive(Args)]
pub struct LoginArgs {
    /// Registry host, such as localhost:5000.
    host: String,
    #[arg(long, short = 'u')]
    username: Option<String>,
    /// Password (prefer --password-stdin: arguments are visible to other users).
    #[arg(long, short = 'p', conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Args)]
pub struct ListArgs {
    /// A repository (for tags) or a registry host (for catalog).
    target: String,
    /// Entries asked for per page (the registry may return fewer; Link pages are followed).
    #[arg(long, default_value_t = 1000)]
    page_size: usize,
}

pub async fn login(context: &Context, args: LoginArgs) -> Result<(), CliError> {
    let username = args.username.ok_or("a user name is required (-u USER)")?;
    let password = match (args.password, args.password_stdin) {
        (Some(password), _) => password,
        (None, true) => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            text.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => return Err("a password is required (--password-stdin or -p)".into()),
    };
    let checked = context
        .transport()?
        .login(&args.host, Credential::Basic { username, password })
        .await?;
    let store = CredentialStore::from_env();
    store.store(&args.host, &checked)?;
    println!("Login Succeeded");
    Ok(())
}

pub fn logout(host: &str) -> Result<(), CliError> {
    if CredentialStore::from_env().erase(host)? {
        println!("Removing login credentials for {host}");
    } else {
        println!("Not logged in to {host}");
    }
    Ok(())
}

pub async fn tags(context: &Context, args: ListArgs) -> Result<(), CliError> {
    let reference = reference(&args.target)?;
    let registry = Registry::new(context.transport()?, &reference.registry);
    for tag in registry
        .tags(reference.repository.as_str(), args.page_size)
        .await?
    {
        println!("{tag}");
    }
    Ok(())
}

pub async fn catalog(context: &Context, args: ListArgs) -> Result<(), CliError> {
    let registry = Registry::new(context.transport()?, args.target.trim_end_matches('/'));
    for repository in registry.catalog(args.page_size).await? {
        println!("{repository}");
    }
    Ok(())
}

pub async fn manifest(context: &Context, text: &str) -> Result<(), CliError> {
    let reference = reference(text)?;
    let registry = Registry::new(context.transport()?, &reference.registry);
    let manifest = registry
        .manifest(reference.repository.as_str(), &reference.reference())
        .await?;
    println!("{}", String::from_utf8_lossy(&manifest.bytes));
    Ok(())
}

pub async fn digest(context: &Context, text: &str) -> Result<(), CliError> {
    let reference = reference(text)?;
    let registry = Registry::new(context.transport()?, &reference.registry);
    let manifest = registry
        .manifest(reference.repository.as_str(), &reference.reference())
        .await?;
    println!("{}", manifest.digest);
    Ok(())
}

pub async fn delete(context: &Context, text: &str) -> Result<(), CliError> {
    let reference = reference(text)?;
    let registry = Registry::new(context.transport()?, &reference.registry);
    match registry
        .delete_manifest(reference.repository.as_str(), &reference.reference())
        .await
    {
        Ok(()) => {
            println!("Deleted {reference}");
            Ok(())
        }
        Err(ApiError::Registry { status: 405, .. }) => Err(format!(
            "{} does not allow deletes (on rregistry or Distribution: storage.delete.enabled)",
            reference.registry
        )
        .into()),
        Err(ApiError::Registry { status: 404, .. }) => {
            Err(format!("{reference}: no such manifest or tag").into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Shows the manifest and config of an image: from the local store when
/// it holds the name, else from its registry.
pub async fn inspect(context: &Context, text: &str) -> Result<(), CliError> {
    let reference = reference(text)?;
    let store = context.store()?;
    let (source, digest, media_type, manifest_bytes, config_bytes) = match store
        .resolve(&reference.to_string())?
    {
        Some(image) => {
            let bytes = store.read_blob(&image.digest)?;
            let manifest: Value = serde_json::from_slice(&bytes)?;
            let config = config_digest(&manifest)
                .map(|d| store.read_blob(&d))
                .transpose()?;
            ("local", image.digest, image.media_type, bytes, config)
        }
        None => {
            let registry = Registry::new(context.transport()?, &reference.registry);
            let repo = reference.repository.as_str();
            let fetched = registry.manifest(repo, &reference.reference()).await?;
            let manifest = fetched.json()?;
            let config = match config_digest(&manifest) {
                Some(digest) => {
                    let response = registry.blob(repo, &digest, 0).await?;
                    let bytes = response.bytes().await?;
                    let actual = roci::Digest::of_bytes(digest.algorithm(), &bytes);
                    if actual != digest {
                        return Err(format!("config blob digest {actual} is not {digest}").into());
                    }
                    Some(bytes.to_vec())
                }
                None => None,
            };
            (
                "remote",
                fetched.digest,
                fetched.media_type,
                fetched.bytes.to_vec(),
                config,
            )
        }
    };
    let manifest: Value = serde_json::from_slice(&manifest_bytes)?;
    let config: Value = match config_bytes {
        Some(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        None => Value::Null,
    };
    let out = json!({
        "Name": reference.to_string(),
        "Source": source,
        "Digest": digest.to_string(),
        "MediaType": media_type,
        "Manifest": manifest,
        "Config": config,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn config_digest(manifest: &Value) -> Option<roci::Digest> {
    manifest
        .get("config")?
        .get("digest")?
        .as_str()?
        .parse()
        .ok()
}
