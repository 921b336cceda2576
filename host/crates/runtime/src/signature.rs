//! Minisign signatures of plugin files: `PLUGIN.wasm.minisig` beside the
//! plugin (minisign's own convention), checked against the operator's
//! trusted public keys before the plugin's bytes are compiled.
//!
//! Verification goes through `minisign-verify` (small, verify-only, no
//! dependencies); signing and key generation ([`sign`]) through the
//! `minisign` crate. Both read and write the files of Debian's `minisign`
//! tool, so either side can be the other.
//!
//! The signature covers the exact bytes the loader was given: the caller
//! reads the plugin file once and passes those bytes both here and to the
//! compiler, so a file replaced between the check and the load is never run.

pub mod sign;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use ct_codecs::{Base64, Decoder};

/// Suffix of a signature file: `x.wasm` is signed by `x.wasm.minisig`.
pub const SIGNATURE_SUFFIX: &str = ".minisig";

/// Largest signature or public key file read. A minisign signature is four
/// short lines (the trusted comment is the only free text); the cap keeps a
/// hostile `x.wasm.minisig` (a huge file, `/dev/zero` behind a symlink)
/// from costing memory.
pub const MAX_KEY_OR_SIGNATURE_BYTES: u64 = 64 * 1024;

/// The 8-byte key identifier minisign puts in every key and signature,
/// shown as minisign shows it (16 upper-case hex digits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", u64::from_le_bytes(self.0))
    }
}

impl KeyId {
    /// The key id of a minisign public key or signature line in base64:
    /// both start with a 2-byte algorithm and the 8-byte key id.
    fn of_base64(line: &str) -> Option<Self> {
        let bin = Base64::decode_to_vec(line.trim(), None).ok()?;
        bin.get(2..10)?.try_into().ok().map(Self)
    }
}

/// The key ids of a list, for messages: `A, B` or `none`.
struct KeyIds<'a>(&'a [TrustedKey]);

impl fmt::Display for KeyIds<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, k) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", k.id)?;
        }
        Ok(())
    }
}

/// A public key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The public key file could not be read.
    #[error("cannot read minisign public key file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text is not a minisign Ed25519 public key.
    #[error("{what} is not a minisign public key ({reason})")]
    Malformed { what: String, reason: String },
}

/// A public key trusted to sign plugins.
#[derive(Clone, Debug)]
pub struct TrustedKey {
    id: KeyId,
    key: minisign_verify::PublicKey,
    base64: String,
}

impl TrustedKey {
    /// A key as an operator writes it: the base64 `RW…` string of a
    /// minisign public key (what `minisign -G` prints, the second line of
    /// its `.pub` file), or else the path of a minisign `.pub` file.
    pub fn parse(spec: &str) -> Result<Self, KeyError> {
        let spec = spec.trim();
        // Every Ed25519 minisign key starts with the algorithm bytes "Ed",
        // which are "RW" in base64; a path never needs to.
        if spec.starts_with("RW") {
            Self::from_base64(spec, &format!("{spec:?}"))
        } else {
            Self::from_file(Path::new(spec))
        }
    }

    /// A minisign `.pub` file (an untrusted comment line, then the key).
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let text = read_small(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        let what = format!("{}", path.display());
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        match (lines.next(), lines.next()) {
            (Some(comment), Some(key)) if comment.starts_with("untrusted comment:") => {
                Self::from_base64(key, &what)
            }
            // A file holding only the base64 key is accepted too.
            (Some(key), None) => Self::from_base64(key, &what),
            _ => Err(KeyError::Malformed {
                what,
                reason: "expected an `untrusted comment:` line and the base64 key".into(),
            }),
        }
    }

    fn from_base64(b64: &str, what: &str) -> Result<Self, KeyError> {
        let malformed = |reason: &str| KeyError::Malformed {
            what: what.to_owned(),
            reason: reason.to_owned(),
        };
        let key =
            minisign_verify::PublicKey::from_base64(b64).map_err(|e| malformed(&e.to_string()))?;
        let id = KeyId::of_base64(b64).ok_or_else(|| malformed("no key id"))?;
        Ok(Self {
            id,
            key,
            base64: b64.trim().to_owned(),
        })
    }

    /// The key's id, as minisign shows it.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The key as the base64 `RW…` string (`minisign -P`, `trusted_keys`).
    pub fn base64(&self) -> &str {
        &self.base64
    }
}

/// What the loader demands of plugin files. Built-in plugins are part of
/// the binary and never checked.
#[derive(Clone, Debug, Default)]
pub struct SignaturePolicy {
    /// Keys whose signatures are accepted.
    pub trusted_keys: Vec<TrustedKey>,
    /// Refuse a plugin file that has no signature file.
    pub require: bool,
}

impl SignaturePolicy {
    /// Whether any file is checked at all: with neither keys nor the
    /// requirement, signature files are ignored (the default).
    pub fn is_active(&self) -> bool {
        self.require || !self.trusted_keys.is_empty()
    }
}

/// A signature that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The key that signed.
    pub key_id: KeyId,
    /// The signed comment (minisign writes `timestamp:… file:… hashed`).
    pub trusted_comment: String,
}

/// Why a plugin file was refused. Each message names the plugin file, its
/// signature file and the key id concerned (or the trusted ones).
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// No signature file, and signatures are required.
    #[error(
        "plugin {plugin} refused: it is unsigned ({sig} does not exist) and signatures are required (trusted key IDs: {trusted})"
    )]
    Unsigned {
        plugin: PathBuf,
        sig: PathBuf,
        trusted: String,
    },
    /// The signature file exists but could not be read.
    #[error(
        "plugin {plugin} refused: cannot read its signature file {sig} (trusted key IDs: {trusted})"
    )]
    Read {
        plugin: PathBuf,
        sig: PathBuf,
        trusted: String,
        #[source]
        source: std::io::Error,
    },
    /// The signature file is not a minisign signature.
    #[error(
        "plugin {plugin} refused: its signature file {sig} is not a minisign signature ({reason}; key ID {key_id})"
    )]
    Malformed {
        plugin: PathBuf,
        sig: PathBuf,
        reason: String,
        /// The key id if that much could be read, else `unknown`.
        key_id: String,
    },
    /// Signed by a key that is not trusted.
    #[error(
        "plugin {plugin} refused: its signature {sig} was made with key ID {key_id}, which is not trusted (trusted key IDs: {trusted})"
    )]
    UntrustedKey {
        plugin: PathBuf,
        sig: PathBuf,
        key_id: KeyId,
        trusted: String,
    },
    /// The signature does not match the file's bytes.
    #[error(
        "plugin {plugin} refused: its signature {sig} by key ID {key_id} does not verify (the file was changed after signing, or the signature is of another file)"
    )]
    BadSignature {
        plugin: PathBuf,
        sig: PathBuf,
        key_id: KeyId,
    },
}

/// The signature file of a plugin file: `x.wasm` → `x.wasm.minisig`.
pub fn signature_path(plugin: &Path) -> PathBuf {
    let mut s = plugin.as_os_str().to_owned();
    s.push(SIGNATURE_SUFFIX);
    PathBuf::from(s)
}

/// Checks the bytes of plugin file `plugin` against its signature file
/// under `policy`:
/// - policy inactive (no keys, not required): `Ok(None)`, nothing read;
/// - no signature file: refused when required, else `Ok(None)` (warned);
/// - a signature file: it must verify with a trusted key, required or not
///   (a signature that is there but wrong means the file is not what was
///   signed).
pub fn check(
    plugin: &Path,
    bytes: &[u8],
    policy: &SignaturePolicy,
) -> Result<Option<Verified>, SignatureError> {
    if !policy.is_active() {
        return Ok(None);
    }
    let sig = signature_path(plugin);
    let trusted = || KeyIds(&policy.trusted_keys).to_string();
    let text = match read_small(&sig) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if policy.require {
                return Err(SignatureError::Unsigned {
                    plugin: plugin.to_owned(),
                    sig,
                    trusted: trusted(),
                });
            }
            tracing::warn!(plugin = %plugin.display(), signature = %sig.display(), "plugin file is unsigned; loaded because [plugins] require_signature is off");
            return Ok(None);
        }
        Err(source) => {
            return Err(SignatureError::Read {
                plugin: plugin.to_owned(),
                sig,
                trusted: trusted(),
                source,
            });
        }
    };
    let verified = verify(plugin, &sig, &text, bytes, &policy.trusted_keys)?;
    tracing::info!(plugin = %plugin.display(), key_id = %verified.key_id, trusted_comment = ?verified.trusted_comment, "plugin signature verified");
    Ok(Some(verified))
}

/// Verifies `bytes` (the contents of `plugin`) against the text of its
/// signature file `sig` with one of `keys` (the one whose id it names).
pub fn verify(
    plugin: &Path,
    sig: &Path,
    sig_text: &str,
    bytes: &[u8],
    keys: &[TrustedKey],
) -> Result<Verified, SignatureError> {
    // The key id sits on the second line; read it first so that even a
    // malformed file's message can name it.
    let key_id = sig_text.lines().nth(1).and_then(KeyId::of_base64);
    let signature =
        minisign_verify::Signature::decode(sig_text).map_err(|e| SignatureError::Malformed {
            plugin: plugin.to_owned(),
            sig: sig.to_owned(),
            reason: e.to_string(),
            key_id: key_id.map_or_else(|| "unknown".into(), |k| k.to_string()),
        })?;
    let Some(key_id) = key_id else {
        return Err(SignatureError::Malformed {
            plugin: plugin.to_owned(),
            sig: sig.to_owned(),
            reason: "no key id".into(),
            key_id: "unknown".into(),
        });
    };
    let Some(key) = keys.iter().find(|k| k.id == key_id) else {
        return Err(SignatureError::UntrustedKey {
            plugin: plugin.to_owned(),
            sig: sig.to_owned(),
            key_id,
            trusted: KeyIds(keys).to_string(),
        });
    };
    // Legacy (non-prehashed) signatures are accepted as minisign -V does:
    // both are Ed25519 over the whole file, the legacy one without BLAKE2b.
    key.key
        .verify(bytes, &signature, true)
        .map_err(|_| SignatureError::BadSignature {
            plugin: plugin.to_owned(),
            sig: sig.to_owned(),
            key_id,
        })?;
    Ok(Verified {
        key_id,
        trusted_comment: signature.trusted_comment().to_owned(),
    })
}

/// Reads a small text file (a key or a signature) without blocking on a
/// FIFO and without following it past [`MAX_KEY_OR_SIGNATURE_BYTES`].
fn read_small(path: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut text = String::new();
    file.take(MAX_KEY_OR_SIGNATURE_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_KEY_OR_SIGNATURE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_KEY_OR_SIGNATURE_BYTES} bytes"),
        ));
    }
    Ok(text)
}
