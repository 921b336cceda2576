use std::path::{Path, PathBuf};

use super::sign::{SignError, SigningKey, generate_key_pair};
use super::*;

/// A file signed by Debian's `minisign` 0.11 (`minisign -G -W`, then
/// `minisign -S -m f.wasm`): the verifier reads the reference tool's files.
const MINISIGN_PUB: &str = "untrusted comment: minisign public key D155C77A159B4B88\nRWSIS5sVesdV0aiEgW1BxeAjpbiYYGAfZQsZx4G0d6gz+bEcuigmDGRj\n";
const MINISIGN_SIG: &str = "untrusted comment: signature from minisign secret key\nRUSIS5sVesdV0RHkK/z3KY42lLqq2zWqcilCy1JIEWI/loIwCi+kbfwMMveJIyIiCGsyfiPg+QibfvefWc+reKMvRpANippYRAM=\ntrusted comment: timestamp:1796214914\tfile:f.wasm\thashed\neIoLEhcQZKCpzCndHzOIKy6YzruKLb/gbKS0lNmRZb3VivFT0PtmW6Bu3NvUEq4JaS9/0dnSdXmldjURGg44CA==\n";
const MINISIGN_SIGNED: &[u8] = b"hello";

/// A fresh directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vigil-signature-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A key pair in `dir`: (public key file, secret key file, key).
fn key_pair(dir: &Dir, name: &str) -> (PathBuf, PathBuf, SigningKey) {
    let public = dir.join(&format!("{name}.pub"));
    let secret = dir.join(&format!("{name}.key"));
    generate_key_pair(&public, &secret, None, false).unwrap();
    let key = SigningKey::from_file(&secret, None).unwrap();
    (public, secret, key)
}

fn policy(keys: &[&Path], require: bool) -> SignaturePolicy {
    SignaturePolicy {
        trusted_keys: keys
            .iter()
            .map(|p| TrustedKey::from_file(p).unwrap())
            .collect(),
        require,
    }
}

fn plugin(dir: &Dir, bytes: &[u8]) -> PathBuf {
    let path = dir.join("p.wasm");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_file_signed_by_the_minisign_tool_verifies_and_names_its_key() {
    let key =
        TrustedKey::parse("RWSIS5sVesdV0aiEgW1BxeAjpbiYYGAfZQsZx4G0d6gz+bEcuigmDGRj").unwrap();
    assert_eq!(key.id().to_string(), "D155C77A159B4B88");
    let v = verify(
        Path::new("f.wasm"),
        Path::new("f.wasm.minisig"),
        MINISIGN_SIG,
        MINISIGN_SIGNED,
        &[key],
    )
    .unwrap();
    assert_eq!(v.key_id.to_string(), "D155C77A159B4B88");
    assert_eq!(
        v.trusted_comment,
        "timestamp:1796214914\tfile:f.wasm\thashed"
    );
}

#[test]
fn public_keys_are_read_inline_or_from_a_pub_file() {
    let dir = Dir::new("keys");
    let file = dir.join("k.pub");
    std::fs::write(&file, MINISIGN_PUB).unwrap();
    let from_file = TrustedKey::parse(file.to_str().unwrap()).unwrap();
    assert_eq!(from_file.id().to_string(), "D155C77A159B4B88");

    let missing = TrustedKey::parse("/nonexistent/k.pub").unwrap_err();
    assert!(matches!(missing, KeyError::Read { .. }), "{missing}");
    assert!(
        missing.to_string().contains("/nonexistent/k.pub"),
        "{missing}"
    );

    let bad = TrustedKey::parse("RWnotakey").unwrap_err();
    assert!(matches!(bad, KeyError::Malformed { .. }), "{bad}");
    std::fs::write(&file, "untrusted comment: x\nhello\n").unwrap();
    let bad = TrustedKey::parse(file.to_str().unwrap()).unwrap_err();
    assert!(
        bad.to_string()
            .contains("k.pub is not a minisign public key"),
        "{bad}"
    );
}

#[test]
fn signed_file_loads_and_its_key_is_named() {
    let dir = Dir::new("roundtrip");
    let (public, _, key) = key_pair(&dir, "k");
    let path = plugin(&dir, b"\0asm plugin bytes");
    let (sig, signed) = key.sign_file(&path, None).unwrap();
    assert_eq!(sig, dir.join("p.wasm.minisig"));
    assert_eq!(signed.key_id, key.id());
    assert!(signed.trusted_comment.ends_with("\tfile:p.wasm\thashed"));

    let bytes = std::fs::read(&path).unwrap();
    let v = check(&path, &bytes, &policy(&[&public], true))
        .unwrap()
        .unwrap();
    assert_eq!(v.key_id, key.id());
}

#[test]
fn changed_bytes_are_refused_naming_file_and_key() {
    let dir = Dir::new("tampered");
    let (public, _, key) = key_pair(&dir, "k");
    let path = plugin(&dir, b"original");
    key.sign_file(&path, None).unwrap();
    for require in [true, false] {
        let e = check(&path, b"originaL", &policy(&[&public], require)).unwrap_err();
        assert!(matches!(e, SignatureError::BadSignature { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains(&key.id().to_string()),
            "{msg}"
        );
    }
}

#[test]
fn a_signature_by_an_untrusted_key_is_refused() {
    let dir = Dir::new("untrusted");
    let (trusted, _, trusted_key) = key_pair(&dir, "trusted");
    let (_, _, other) = key_pair(&dir, "other");
    let path = plugin(&dir, b"bytes");
    other.sign_file(&path, None).unwrap();
    let e = check(&path, b"bytes", &policy(&[&trusted], false)).unwrap_err();
    assert!(matches!(e, SignatureError::UntrustedKey { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&other.id().to_string()) && msg.contains(&trusted_key.id().to_string()),
        "{msg}"
    );
}

#[test]
fn unsigned_files_are_refused_only_when_required() {
    let dir = Dir::new("unsigned");
    let (public, _, _) = key_pair(&dir, "k");
    let path = plugin(&dir, b"bytes");
    let e = check(&path, b"bytes", &policy(&[&public], true)).unwrap_err();
    assert!(matches!(e, SignatureError::Unsigned { .. }), "{e}");
    assert!(
        e.to_string().contains("p.wasm.minisig does not exist"),
        "{e}"
    );
    assert_eq!(
        check(&path, b"bytes", &policy(&[&public], false)).unwrap(),
        None
    );
}

#[test]
fn without_keys_or_requirement_signature_files_are_not_read() {
    let dir = Dir::new("inactive");
    let path = plugin(&dir, b"bytes");
    std::fs::write(dir.join("p.wasm.minisig"), "garbage").unwrap();
    assert_eq!(
        check(&path, b"bytes", &SignaturePolicy::default()).unwrap(),
        None
    );
}

#[test]
fn a_malformed_signature_file_is_refused() {
    let dir = Dir::new("malformed");
    let (public, _, _) = key_pair(&dir, "k");
    let path = plugin(&dir, b"bytes");
    std::fs::write(
        dir.join("p.wasm.minisig"),
        "untrusted comment: x\nnot base64\n",
    )
    .unwrap();
    let e = check(&path, b"bytes", &policy(&[&public], false)).unwrap_err();
    assert!(matches!(e, SignatureError::Malformed { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("p.wasm.minisig is not a minisign signature"),
        "{e}"
    );
}

#[test]
fn a_fifo_as_signature_file_is_refused_without_blocking() {
    let dir = Dir::new("fifo");
    let (public, _, _) = key_pair(&dir, "k");
    let path = plugin(&dir, b"bytes");
    let sig = dir.join("p.wasm.minisig");
    let status = std::process::Command::new("mkfifo")
        .arg(&sig)
        .status()
        .unwrap();
    assert!(status.success());
    let e = check(&path, b"bytes", &policy(&[&public], true)).unwrap_err();
    assert!(matches!(e, SignatureError::Read { .. }), "{e}");
}

#[test]
fn password_protected_secret_keys_need_their_password() {
    let dir = Dir::new("encrypted");
    let public = dir.join("k.pub");
    let secret = dir.join("k.key");
    let id = generate_key_pair(&public, &secret, Some("correct horse"), false).unwrap();
    let e = SigningKey::from_file(&secret, None).unwrap_err();
    assert!(matches!(e, SignError::NeedsPassword { .. }), "{e}");
    let e = SigningKey::from_file(&secret, Some("wrong")).unwrap_err();
    assert!(matches!(e, SignError::Key { .. }), "{e}");
    let key = SigningKey::from_file(&secret, Some("correct horse")).unwrap();
    assert_eq!(key.id(), id);
    assert_eq!(TrustedKey::from_file(&public).unwrap().id(), id);
    // An existing key pair is kept.
    let e = generate_key_pair(&public, &secret, None, false).unwrap_err();
    assert!(matches!(e, SignError::Exists { .. }), "{e}");
}

#[test]
fn the_secret_key_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Dir::new("mode");
    let (_, secret, _) = key_pair(&dir, "k");
    let mode = std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn a_trusted_comment_is_one_line() {
    let dir = Dir::new("comment");
    let (_, _, key) = key_pair(&dir, "k");
    let e = key
        .sign(b"x", "x.wasm", Some("a\nb"), Path::new("x.wasm"))
        .unwrap_err();
    assert!(matches!(e, SignError::Comment), "{e}");
}
