//! Signing plugin files and making key pairs, in minisign's formats (the
//! `minisign` crate), for `vigil plugin sign` and `vigil plugin keygen`.
//!
//! Nothing here prompts: minisign's crate asks for a password on the
//! terminal when given none for an encrypted key, so whether a key is
//! encrypted is read from the key first and a missing password is an error.

use std::io::Write;
use std::path::{Path, PathBuf};

use ct_codecs::{Base64, Decoder};

use super::{KeyId, SignatureError, TrustedKey, Verified, read_small, signature_path};

/// minisign's key derivation id for a password-protected secret key
/// (scrypt); an unencrypted key (`minisign -G -W`) has two zero bytes.
const KDF_SCRYPT: [u8; 2] = *b"Sc";
const KDF_NONE: [u8; 2] = [0, 0];

/// Signing or key generation failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The secret key file could not be read.
    #[error("cannot read minisign secret key file {path}")]
    ReadKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The secret key file is not a usable minisign secret key.
    #[error("{path} is not a usable minisign secret key: {reason}")]
    Key { path: PathBuf, reason: String },
    /// The key is password-protected and no password was given.
    #[error("{path} is a password-protected minisign secret key and no password was given")]
    NeedsPassword { path: PathBuf },
    /// The plugin file could not be read.
    #[error("cannot read plugin file {path}")]
    ReadPlugin {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A trusted comment must be one line.
    #[error("the trusted comment must be one line of text")]
    Comment,
    /// minisign refused to sign.
    #[error("cannot sign {path} with key ID {key_id}: {reason}")]
    Sign {
        path: PathBuf,
        key_id: KeyId,
        reason: String,
    },
    /// What was just signed does not verify (never expected: a bug in one
    /// of the two minisign implementations).
    #[error("the signature just made does not verify")]
    SelfCheck(#[source] SignatureError),
    /// An output file could not be written.
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A key file to be generated exists already.
    #[error("{path} exists already (not overwritten)")]
    Exists { path: PathBuf },
    /// minisign could not generate a key pair.
    #[error("cannot generate a key pair: {reason}")]
    Generate { reason: String },
}

/// A decrypted secret key, ready to sign.
pub struct SigningKey {
    id: KeyId,
    secret: minisign::SecretKey,
    public: minisign::PublicKey,
}

// `minisign::SecretKey`'s own Debug prints the key bytes.
impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("id", &self.id).finish()
    }
}

impl SigningKey {
    /// Reads a minisign secret key file: unencrypted (`minisign -G -W`)
    /// or password-protected (then `password` is needed).
    pub fn from_file(path: &Path, password: Option<&str>) -> Result<Self, SignError> {
        let text = read_small(path).map_err(|source| SignError::ReadKey {
            path: path.to_owned(),
            source,
        })?;
        let bad = |reason: String| SignError::Key {
            path: path.to_owned(),
            reason,
        };
        // Line 2: the algorithm (2 bytes), then the key derivation (2).
        let line = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .nth(1)
            .ok_or_else(
                || bad("expected an `untrusted comment:` line and the base64 key".into()),
            )?;
        let bin = Base64::decode_to_vec(line, None).map_err(|_| bad("not base64".into()))?;
        let kdf = bin.get(2..4).ok_or_else(|| bad("too short".into()))?;
        let key_box = minisign::SecretKeyBox::from_string(&text).map_err(|e| bad(e.to_string()))?;
        let secret = match (kdf, password) {
            (k, _) if k == KDF_NONE => key_box.into_unencrypted_secret_key(),
            (k, Some(password)) if k == KDF_SCRYPT => {
                key_box.into_secret_key(Some(password.to_owned()))
            }
            (k, None) if k == KDF_SCRYPT => {
                return Err(SignError::NeedsPassword {
                    path: path.to_owned(),
                });
            }
            _ => return Err(bad("unsupported key derivation".into())),
        }
        .map_err(|e| bad(e.to_string()))?;
        // The key id is encrypted with the key: known only now.
        let id = KeyId(
            secret
                .keynum()
                .try_into()
                .map_err(|_| bad("no key id".into()))?,
        );
        let public =
            minisign::PublicKey::from_secret_key(&secret).map_err(|e| bad(e.to_string()))?;
        Ok(Self { id, secret, public })
    }

    /// The key's id, as minisign shows it.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The public key, as the base64 `RW…` string.
    pub fn public_key_base64(&self) -> String {
        self.public.to_base64()
    }

    /// A minisign signature (the text of a `.minisig` file) of `bytes`,
    /// prehashed as minisign signs by default. The trusted comment defaults
    /// to minisign's: `timestamp:<unix time>\tfile:<file name>\thashed`.
    pub fn sign(
        &self,
        bytes: &[u8],
        file_name: &str,
        trusted_comment: Option<&str>,
        path: &Path,
    ) -> Result<String, SignError> {
        let comment = match trusted_comment {
            Some(c) if c.contains(['\n', '\r']) => return Err(SignError::Comment),
            Some(c) => c.to_owned(),
            None => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                // A file name with a line break would end the comment line.
                let name: String = file_name
                    .chars()
                    .map(|c| if c.is_control() { '?' } else { c })
                    .collect();
                format!("timestamp:{now}\tfile:{name}\thashed")
            }
        };
        let untrusted = format!("signature from vigil plugin sign, key ID {}", self.id);
        minisign::sign(
            Some(&self.public),
            &self.secret,
            bytes,
            Some(&comment),
            Some(&untrusted),
        )
        .map(minisign::SignatureBox::into_string)
        .map_err(|e| SignError::Sign {
            path: path.to_owned(),
            key_id: self.id,
            reason: e.to_string(),
        })
    }

    /// Signs plugin file `plugin`: writes `plugin.minisig` (replaced
    /// atomically) and checks it with the verifier the loader uses.
    pub fn sign_file(
        &self,
        plugin: &Path,
        trusted_comment: Option<&str>,
    ) -> Result<(PathBuf, Verified), SignError> {
        let bytes = std::fs::read(plugin).map_err(|source| SignError::ReadPlugin {
            path: plugin.to_owned(),
            source,
        })?;
        let name = plugin
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = self.sign(&bytes, &name, trusted_comment, plugin)?;
        let sig = signature_path(plugin);
        let key =
            TrustedKey::from_base64(&self.public_key_base64(), "the signing key").map_err(|e| {
                SignError::Generate {
                    reason: e.to_string(),
                }
            })?;
        let verified =
            super::verify(plugin, &sig, &text, &bytes, &[key]).map_err(SignError::SelfCheck)?;
        write_replacing(&sig, text.as_bytes(), 0o644)?;
        Ok((sig, verified))
    }
}

/// A new key pair written as minisign writes it: `public` (the `.pub`
/// file) and `secret` (mode 0600), encrypted with `password` when given
/// (scrypt, as `minisign -G`), else unencrypted (as `minisign -G -W`).
/// Existing files are kept unless `force`.
pub fn generate_key_pair(
    public: &Path,
    secret: &Path,
    password: Option<&str>,
    force: bool,
) -> Result<KeyId, SignError> {
    if !force {
        for path in [public, secret] {
            if path.symlink_metadata().is_ok() {
                return Err(SignError::Exists {
                    path: path.to_owned(),
                });
            }
        }
    }
    let generate = |e: minisign::PError| SignError::Generate {
        reason: e.to_string(),
    };
    let pair = match password {
        Some(p) => minisign::KeyPair::generate_encrypted_keypair(Some(p.to_owned())),
        None => minisign::KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(generate)?;
    let comment = if password.is_some() {
        "minisign encrypted secret key"
    } else {
        "minisign secret key (unencrypted)"
    };
    let secret_text = pair
        .sk
        .to_box(Some(comment))
        .map_err(generate)?
        .into_string();
    let public_text = pair.pk.to_box().map_err(generate)?.into_string();
    let id = KeyId::of_base64(&pair.pk.to_base64()).ok_or_else(|| SignError::Generate {
        reason: "no key id".into(),
    })?;
    write_replacing(secret, secret_text.as_bytes(), 0o600)?;
    write_replacing(public, public_text.as_bytes(), 0o644)?;
    Ok(id)
}

/// Writes `path` through a temporary file renamed over it, so a reader
/// (a running Vigil watching the plugin directory) never sees half a file.
fn write_replacing(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SignError> {
    use std::os::unix::fs::OpenOptionsExt;
    let write = |source| SignError::Write {
        path: path.to_owned(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(write)
}
