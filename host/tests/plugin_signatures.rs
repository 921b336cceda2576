//! Signed plugins through the real binary: `vigil plugin keygen|sign|verify`,
//! `[plugins] trusted_keys` and `require_signature` at start, at reload and in
//! `vigil config check`, with plugins built from source (`tests/plugins/`).
//! Interop with Debian's `minisign` both ways: a file it signs loads in
//! Vigil, a file Vigil signs verifies with `minisign -V`. A missing
//! `minisign` (installed by `scripts/test-deps.sh`) fails the test: skipping
//! would let the interop rot unnoticed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::vigil;
use vigil_test_support::fixtures::hostile_dir;
use vigil_test_support::output::describe;
use vigil_test_support::{TempDir, VigilProcess};

const DEADLINE: Duration = Duration::from_secs(60);

/// `DIR/plugins`, created empty.
fn plugin_dir(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    plugins
}

/// Copies the hostile plugin `name` into `dir` as `name.wasm` (its
/// `describe()` name: the file stem is its identity).
fn plugin(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(format!("{name}.wasm"));
    std::fs::copy(
        hostile_dir().join(format!("{}.wasm", name.replace('-', "_"))),
        &to,
    )
    .expect("copy plugin");
    to
}

/// Runs `vigil ARGS`, expecting exit status `code`; returns stdout + stderr.
fn vigil_ok(args: &[&OsStr], code: i32) -> String {
    let out = vigil().args(args).output().expect("run vigil");
    let all = describe(&out);
    assert_eq!(out.status.code(), Some(code), "vigil {args:?}:\n{all}");
    all
}

/// An unencrypted key pair made by `vigil plugin keygen`: (public, secret).
fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let public = dir.join(format!("{name}.pub"));
    let secret = dir.join(format!("{name}.key"));
    vigil_ok(
        &[
            "plugin".as_ref(),
            "keygen".as_ref(),
            "--unencrypted".as_ref(),
            "-p".as_ref(),
            public.as_os_str(),
            "-s".as_ref(),
            secret.as_os_str(),
        ],
        0,
    );
    (public, secret)
}

fn sign(secret: &Path, plugin: &Path) -> String {
    sign_expecting(secret, plugin, 0)
}

/// `vigil plugin sign -s SECRET PLUGIN`, expecting `code`.
fn sign_expecting(secret: &Path, plugin: &Path, code: i32) -> String {
    vigil_ok(
        &[
            "plugin".as_ref(),
            "sign".as_ref(),
            "-s".as_ref(),
            secret.as_os_str(),
            plugin.as_os_str(),
        ],
        code,
    )
}

/// `vigil plugin sign` with a password-protected `secret`, the password
/// given in `VIGIL_SIGN_PASSWORD` (no prompt): must succeed.
fn sign_with_password(secret: &Path, plugin: &Path, password: &str) {
    let out = vigil()
        .args(["plugin", "sign", "-s"])
        .arg(secret)
        .arg(plugin)
        .env("VIGIL_SIGN_PASSWORD", password)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
}

/// Changes a signed file's bytes after the fact, as an attacker would.
fn tamper(file: &Path, change: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(file).unwrap();
    change(&mut bytes);
    std::fs::write(file, bytes).unwrap();
}

/// `vigil plugin verify -p KEY PLUGIN`, expecting `code`.
fn verify(key: &OsStr, plugin: &Path, code: i32) -> String {
    vigil_ok(
        &[
            "plugin".as_ref(),
            "verify".as_ref(),
            "-p".as_ref(),
            key,
            plugin.as_os_str(),
        ],
        code,
    )
}

/// The key id minisign writes in a `.pub` file's comment.
fn key_id(public: &Path) -> String {
    let text = std::fs::read_to_string(public).unwrap();
    let id = text
        .lines()
        .next()
        .and_then(|l| l.rsplit(' ').next())
        .unwrap();
    // minisign writes the ID without leading zeros (`%llX`), Vigil with all
    // sixteen digits: one key in sixteen starts with a zero nibble.
    format!("{:016X}", u64::from_str_radix(id, 16).unwrap())
}

/// The base64 `RW…` line of a `.pub` file.
fn key_base64(public: &Path) -> String {
    std::fs::read_to_string(public)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_owned()
}

/// Debian's `minisign`, with `stdin` fed in; a missing tool fails the test.
fn minisign(args: &[&OsStr], stdin: &str) -> Output {
    let mut child = Command::new("minisign")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run minisign ({e}): install Debian's `minisign` package (scripts/test-deps.sh does)"
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// [`minisign`], which must succeed.
fn minisign_ok(args: &[&OsStr], stdin: &str) {
    let out = minisign(args, stdin);
    assert!(
        out.status.success(),
        "minisign {args:?}: {}",
        describe(&out)
    );
}

/// `vigil run ARGS` in `dir` with no event source, admin server or
/// Kubernetes (only its plugins matter here), once it runs.
fn run(dir: &Path, args: &[&OsStr]) -> VigilProcess {
    let mut cmd = vigil();
    vigil_test_support::without_kubernetes(&mut cmd, &dir.join("home"));
    let vigil = VigilProcess::spawn(cmd.current_dir(dir).arg("run").args(args).args([
        "--no-docker",
        "--no-network",
        "--no-file-integrity",
        "--no-k8s-watch",
        "--no-admin",
    ]));
    vigil.wait_for_stderr("vigil running", DEADLINE);
    vigil
}

/// The first line of `log` holding `needle`.
fn line_with<'a>(log: &'a str, needle: &str) -> Option<&'a str> {
    log.lines().find(|l| l.contains(needle))
}

/// Waits for a reload; returns the log and its latest reload line.
fn wait_for_reload(vigil: &VigilProcess) -> (String, String) {
    vigil.wait_for_stderr("configuration reloaded", DEADLINE);
    let log = vigil.stderr_text();
    let reloaded = log
        .lines()
        .rfind(|l| l.contains("configuration reloaded"))
        .unwrap()
        .to_owned();
    (log, reloaded)
}

fn config(dir: &Path, plugins: &Path, keys: &[String], require: bool) -> PathBuf {
    let path = dir.join("vigil.toml");
    let keys: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
    std::fs::write(
        &path,
        format!(
            "data_dir = {:?}\n[plugins]\ndir = {:?}\ncache = false\ntrusted_keys = [{}]\nrequire_signature = {require}\n",
            dir.join("data"),
            plugins,
            keys.join(", ")
        ),
    )
    .unwrap();
    path
}

fn config_check(config: &Path, code: i32) -> String {
    vigil_ok(
        &["config".as_ref(), "check".as_ref(), config.as_os_str()],
        code,
    )
}

#[test]
fn signed_file_verifies_and_a_changed_file_or_another_key_is_refused() {
    let dir = TempDir::new("sig-cli");
    let (public, secret) = keygen(&dir, "team");
    let (other, _) = keygen(&dir, "other");
    let id = key_id(&public);
    let file = plugin(&dir, "hostile-trap");

    let signed = sign(&secret, &file);
    assert!(
        signed.contains(&format!("signed with key ID {id}")),
        "{signed}"
    );
    assert!(dir.join("hostile-trap.wasm.minisig").is_file());

    let ok = verify(public.as_os_str(), &file, 0);
    assert!(ok.contains(&format!("signature OK, key ID {id}")), "{ok}");
    // The key inline, as `trusted_keys` and `minisign -P` take it.
    verify(key_base64(&public).as_ref(), &file, 0);

    let wrong = verify(other.as_os_str(), &file, 1);
    assert!(
        wrong.contains(&format!("made with key ID {id}, which is not trusted"))
            && wrong.contains(&key_id(&other))
            && wrong.contains("hostile-trap.wasm"),
        "{wrong}"
    );

    tamper(&file, |bytes| bytes.push(0));
    let tampered = verify(public.as_os_str(), &file, 1);
    assert!(
        tampered.contains(&format!("by key ID {id} does not verify"))
            && tampered.contains("hostile-trap.wasm"),
        "{tampered}"
    );

    let unsigned = plugin(&dir, "hostile-loop");
    let missing = verify(public.as_os_str(), &unsigned, 1);
    assert!(
        missing.contains("hostile-loop.wasm.minisig does not exist"),
        "{missing}"
    );
}

#[test]
fn password_protected_keys_sign_without_a_prompt() {
    let dir = TempDir::new("sig-password");
    let public = dir.join("team.pub");
    let secret = dir.join("team.key");
    let password = dir.join("password");
    std::fs::write(&password, "correct horse\n").unwrap();
    vigil_ok(
        &[
            "plugin".as_ref(),
            "keygen".as_ref(),
            "--password-file".as_ref(),
            password.as_os_str(),
            "-p".as_ref(),
            public.as_os_str(),
            "-s".as_ref(),
            secret.as_os_str(),
        ],
        0,
    );
    let file = plugin(&dir, "hostile-trap");
    let no_password = sign_expecting(&secret, &file, 1);
    assert!(
        no_password.contains("password-protected") && no_password.contains("--password-file"),
        "{no_password}"
    );
    sign_with_password(&secret, &file, "correct horse");
    verify(public.as_os_str(), &file, 0);
}

/// `require_signature`: the unsigned file and the one signed by another key
/// are refused, each named with its reason; the signed one (and the
/// built-ins) run. Signing the refused file later reloads it: a new
/// `.minisig` in the plugin directory is a change like a new plugin.
#[test]
fn require_signature_refuses_unsigned_files_and_loads_signed_ones() {
    let dir = TempDir::new("sig-run");
    let plugins = plugin_dir(&dir);
    let (public, secret) = keygen(&dir, "team");
    let (_, other) = keygen(&dir, "other");
    let signed = plugin(&plugins, "hostile-trap");
    sign(&secret, &signed);
    let unsigned = plugin(&plugins, "hostile-loop");
    let foreign = plugin(&plugins, "hostile-flood");
    sign(&other, &foreign);
    let config = config(
        &dir,
        &plugins,
        &[public.to_string_lossy().into_owned()],
        true,
    );

    let check = config_check(&config, 1);
    assert!(
        check.contains("hostile-loop.wasm refused: it is unsigned")
            && check.contains("hostile-flood.wasm refused")
            && check.contains("which is not trusted"),
        "{check}"
    );

    let vigil = run(&dir, &["--config".as_ref(), config.as_os_str()]);
    let log = vigil.stderr_text();
    let line = |needle: &str| line_with(&log, needle);
    assert!(
        line("plugin=\"hostile-trap\"").is_some_and(|l| l.contains("plugin loaded")),
        "{log}"
    );
    assert!(
        line("hostile-trap.wasm").is_some_and(|l| l.contains("plugin signature verified")),
        "{log}"
    );
    assert!(
        line("hostile-loop.wasm refused").is_some_and(|l| l.contains("plugin not loaded")),
        "{log}"
    );
    assert!(
        line("hostile-flood.wasm refused")
            .is_some_and(|l| l.contains(&key_id(&other.with_extension("pub")))),
        "{log}"
    );
    assert!(line("container-escape").is_some(), "built-ins load: {log}");

    // Signing the refused plugins reloads them.
    sign(&secret, &unsigned);
    sign(&secret, &foreign);
    let (log, reloaded) = wait_for_reload(&vigil);
    assert!(
        reloaded.contains("hostile-loop") && reloaded.contains("hostile-flood"),
        "{log}"
    );
    vigil.stop();
}

/// The same policy from the command line (`--trusted-key`, relative to the
/// working directory, and `--require-signature`, no config file), and the
/// key file is watched: replacing it with a key that did not sign the
/// plugin (a revocation) is a reload that is refused, naming the plugin;
/// re-signing with the new key reloads it.
#[test]
fn command_line_keys_load_signed_plugins_and_a_replaced_key_file_reloads() {
    let dir = TempDir::new("sig-cli");
    let plugins = plugin_dir(&dir);
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (public, secret) = keygen(&keys, "team");
    let (rotated, rotated_secret) = keygen(&dir, "rotated");
    let signed = plugin(&plugins, "hostile-trap");
    sign(&secret, &signed);
    let unsigned = plugin(&plugins, "hostile-loop");

    let vigil = run(
        &dir,
        &[
            "--data-dir".as_ref(),
            dir.join("data").as_os_str(),
            "--plugin-dir".as_ref(),
            plugins.as_os_str(),
            "--trusted-key".as_ref(),
            "keys/team.pub".as_ref(),
            "--require-signature".as_ref(),
            "--no-builtin".as_ref(),
        ],
    );
    let log = vigil.stderr_text();
    let line = |needle: &str| line_with(&log, needle);
    assert!(
        line("hostile-trap.wasm").is_some_and(|l| l.contains("plugin signature verified")),
        "{log}"
    );
    assert!(
        line("hostile-loop.wasm refused").is_some_and(|l| l.contains("unsigned")),
        "{log}"
    );
    std::fs::remove_file(&unsigned).unwrap();

    // The team key is replaced by one that signed nothing.
    let team_id = key_id(&public);
    std::fs::copy(&rotated, &public).unwrap();
    vigil.wait_for_stderr("RELOAD REFUSED", DEADLINE);
    let log = vigil.stderr_text();
    let refused = log.lines().find(|l| l.contains("RELOAD REFUSED")).unwrap();
    assert!(
        refused.contains("hostile-trap.wasm")
            && refused.contains(&team_id)
            && refused.contains("not trusted"),
        "{log}"
    );

    // Re-signed with the key now trusted: reloaded.
    sign(&rotated_secret, &signed);
    let (log, reloaded) = wait_for_reload(&vigil);
    assert!(reloaded.contains("hostile-trap"), "{log}");
    vigil.stop();
}

/// With keys but no requirement, a plugin without a signature loads; one
/// whose signature is there but wrong does not.
#[test]
fn a_wrong_signature_is_refused_even_when_signatures_are_optional() {
    let dir = TempDir::new("sig-optional");
    let plugins = plugin_dir(&dir);
    let (public, secret) = keygen(&dir, "team");
    plugin(&plugins, "hostile-loop");
    let tampered = plugin(&plugins, "hostile-trap");
    sign(&secret, &tampered);
    tamper(&tampered, |bytes| bytes.extend_from_slice(b"\0\0\0\0"));
    let config = config(&dir, &plugins, &[key_base64(&public)], false);
    let check = config_check(&config, 1);
    assert!(
        check.contains(&format!(
            "hostile-trap.wasm refused: its signature {} by key ID {} does not verify",
            tampered.with_extension("wasm.minisig").display(),
            key_id(&public)
        )),
        "{check}"
    );
    // Unsigned, with signatures optional: loaded (with a warning).
    assert!(!check.contains("hostile-loop.wasm refused"), "{check}");
    assert!(
        check.contains("hostile-loop.wasm"),
        "the warning names it: {check}"
    );
}

#[test]
fn a_bad_trusted_key_is_a_config_error_with_its_path() {
    let dir = TempDir::new("sig-config");
    let plugins = plugin_dir(&dir);
    let not_a_key = dir.join("not-a-key.pub");
    std::fs::write(&not_a_key, "untrusted comment: x\nhello\n").unwrap();
    let config = config(
        &dir,
        &plugins,
        &[
            not_a_key.to_string_lossy().into_owned(),
            "relative.pub".into(),
            "RWnope".into(),
        ],
        true,
    );
    let check = config_check(&config, 1);
    assert!(
        check.contains(&format!(
            "plugins.trusted_keys[0]: {} is not a minisign public key",
            not_a_key.display()
        )) && check.contains("plugins.trusted_keys[1]: must be a minisign public key")
            && check.contains("plugins.trusted_keys[2]: \"RWnope\" is not a minisign public key"),
        "{check}"
    );
    let config = self::config(&dir, &plugins, &[], true);
    let check = config_check(&config, 1);
    assert!(
        check.contains("plugins.require_signature: needs at least one key"),
        "{check}"
    );
}

/// A file signed by Debian's `minisign` (unencrypted key, then a
/// password-protected one) verifies with `vigil plugin verify` and loads
/// under `require_signature`; Vigil signs with minisign's password-protected
/// key too.
#[test]
fn minisign_signed_files_verify_and_load_in_vigil() {
    let dir = TempDir::new("sig-minisign-to-vigil");
    let plugins = plugin_dir(&dir);
    let public = dir.join("m.pub");
    let secret = dir.join("m.key");
    minisign_ok(
        &[
            "-G".as_ref(),
            "-W".as_ref(),
            "-p".as_ref(),
            public.as_os_str(),
            "-s".as_ref(),
            secret.as_os_str(),
        ],
        "",
    );
    let file = plugin(&plugins, "hostile-trap");
    minisign_ok(
        &[
            "-S".as_ref(),
            "-s".as_ref(),
            secret.as_os_str(),
            "-m".as_ref(),
            file.as_os_str(),
        ],
        "",
    );

    let ok = verify(public.as_os_str(), &file, 0);
    assert!(
        ok.contains(&format!("signature OK, key ID {}", key_id(&public)))
            && ok.contains("file:hostile-trap.wasm"),
        "{ok}"
    );
    let config = config(&dir, &plugins, &[key_base64(&public)], true);
    let check = config_check(&config, 0);
    assert!(
        check.contains("hostile-trap") && check.contains("plugin signatures: required"),
        "{check}"
    );

    // minisign's password-protected key (scrypt, as minisign derives it).
    let enc_public = dir.join("enc.pub");
    let enc_secret = dir.join("enc.key");
    minisign_ok(
        &[
            "-G".as_ref(),
            "-p".as_ref(),
            enc_public.as_os_str(),
            "-s".as_ref(),
            enc_secret.as_os_str(),
        ],
        "pw-1\npw-1\n",
    );
    let other = plugin(&dir, "hostile-loop");
    sign_with_password(&enc_secret, &other, "pw-1");
    verify(enc_public.as_os_str(), &other, 0);
}

/// A file signed by `vigil plugin sign` verifies with `minisign -V` (and a
/// changed one does not); a key from `vigil plugin keygen` signs with
/// `minisign -S`.
#[test]
fn vigil_signed_files_verify_with_minisign() {
    let dir = TempDir::new("sig-vigil-to-minisign");
    let (public, secret) = keygen(&dir, "team");
    let file = plugin(&dir, "hostile-trap");
    sign(&secret, &file);
    let verify_args = |file: &Path| -> Output {
        minisign(
            &[
                "-V".as_ref(),
                "-p".as_ref(),
                public.as_os_str(),
                "-m".as_ref(),
                file.as_os_str(),
            ],
            "",
        )
    };
    let out = verify_args(&file);
    assert!(out.status.success(), "minisign -V: {}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Signature and comment signature verified"),
        "{}",
        describe(&out)
    );
    // Prehashed only (`-H`), as Vigil signs.
    minisign_ok(
        &[
            "-V".as_ref(),
            "-H".as_ref(),
            "-P".as_ref(),
            key_base64(&public).as_ref(),
            "-m".as_ref(),
            file.as_os_str(),
        ],
        "",
    );

    tamper(&file, |bytes| bytes[100] ^= 1);
    let out = verify_args(&file);
    assert!(!out.status.success(), "minisign accepted a changed file");

    // minisign signs with Vigil's (unencrypted) key; Vigil verifies it.
    let other = plugin(&dir, "hostile-loop");
    minisign_ok(
        &[
            "-S".as_ref(),
            "-s".as_ref(),
            secret.as_os_str(),
            "-m".as_ref(),
            other.as_os_str(),
        ],
        "",
    );
    verify(public.as_os_str(), &other, 0);
}
