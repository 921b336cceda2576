//! `vigil plugin sign`, `vigil plugin verify` and `vigil plugin keygen`:
//! minisign signatures of plugin files, the ones `[plugins] trusted_keys`
//! and `require_signature` check at load (`vigil_runtime::signature`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::cli::{PluginKeygenArgs, PluginSignArgs, PluginVerifyArgs, SIGN_PASSWORD_ENV};
use vigil_core::error::chain;
use vigil_runtime::signature::sign::{SigningKey, generate_key_pair};
use vigil_runtime::signature::{self, TrustedKey};

/// The password of `--password-file`, else of the environment, else none.
fn password(file: Option<&Path>) -> anyhow::Result<Option<String>> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read password file {}", file.display()))?;
        return Ok(Some(text.lines().next().unwrap_or_default().to_owned()));
    }
    Ok(std::env::var(SIGN_PASSWORD_ENV).ok())
}

pub fn sign(args: &PluginSignArgs) -> anyhow::Result<ExitCode> {
    let password = password(args.password_file.as_deref())?;
    let key = SigningKey::from_file(&args.secret_key, password.as_deref()).map_err(|e| {
        let hint = match e {
            signature::sign::SignError::NeedsPassword { .. } => {
                format!(" (give it with --password-file FILE or ${SIGN_PASSWORD_ENV})")
            }
            _ => String::new(),
        };
        anyhow::anyhow!("{}{hint}", chain(&e))
    })?;
    for plugin in &args.plugins {
        let (sig, _) = key
            .sign_file(plugin, args.trusted_comment.as_deref())
            .map_err(|e| anyhow::anyhow!("{}", chain(&e)))?;
        println!(
            "{}: signed with key ID {} → {}",
            plugin.display(),
            key.id(),
            sig.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn verify(args: &PluginVerifyArgs) -> anyhow::Result<ExitCode> {
    let mut specs = args.public_keys.clone();
    if let Some(file) = &args.config {
        let config = crate::config::load_file(file)
            .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), chain(&e)))?;
        specs.extend(config.plugins.trusted_keys);
    }
    if specs.is_empty() {
        bail!("no trusted key: give --public-key KEY or --config FILE with [plugins] trusted_keys");
    }
    let keys = specs
        .iter()
        .map(|s| TrustedKey::parse(s).map_err(|e| anyhow::anyhow!("{}", chain(&e))))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let policy = signature::SignaturePolicy {
        trusted_keys: keys,
        require: true,
    };
    let mut refused = 0;
    for plugin in &args.plugins {
        let bytes = match std::fs::read(plugin) {
            Ok(b) => b,
            Err(e) => {
                println!("{}: cannot read: {e}", plugin.display());
                refused += 1;
                continue;
            }
        };
        match signature::check(plugin, &bytes, &policy) {
            Ok(Some(v)) => println!(
                "{}: signature OK, key ID {}, trusted comment: {}",
                plugin.display(),
                v.key_id,
                v.trusted_comment.escape_debug()
            ),
            // Not expected: a policy that requires signatures has no "unsigned but fine".
            Ok(None) => {
                println!("{}: unsigned", plugin.display());
                refused += 1;
            }
            Err(e) => {
                println!("{}", chain(&e));
                refused += 1;
            }
        }
    }
    Ok(if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn keygen(args: &PluginKeygenArgs) -> anyhow::Result<ExitCode> {
    let password = if args.unencrypted {
        None
    } else {
        password(args.password_file.as_deref())?
    };
    if password.is_none() && !args.unencrypted {
        bail!(
            "give the secret key's password with --password-file FILE or ${SIGN_PASSWORD_ENV}, or store it unencrypted with --unencrypted"
        );
    }
    let id = generate_key_pair(
        &args.public_key,
        &args.secret_key,
        password.as_deref(),
        args.force,
    )
    .map_err(|e| anyhow::anyhow!("{}", chain(&e)))?;
    let public =
        TrustedKey::from_file(&args.public_key).map_err(|e| anyhow::anyhow!("{}", chain(&e)))?;
    println!(
        "key ID {id}: public key {} ({}), secret key {}{}",
        args.public_key.display(),
        public.base64(),
        args.secret_key.display(),
        if password.is_some() {
            " (password-protected)"
        } else {
            " (unencrypted: keep it secret)"
        }
    );
    Ok(ExitCode::SUCCESS)
}
