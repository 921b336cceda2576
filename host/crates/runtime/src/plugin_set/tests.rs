use std::os::unix::fs::PermissionsExt;

use super::*;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-plugin-set-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn put(dir: &Path, file: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(file);
    std::fs::write(&p, bytes).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    p
}

fn messages(errors: &[LoadError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

#[test]
fn a_file_may_not_take_a_built_in_name_and_keeps_its_own() {
    let dir = scratch("dup");
    let taken = builtin::names().next().expect("a built-in plugin");
    put(&dir, &format!("{taken}.wasm"), b"not wasm");
    put(&dir, "mine.wasm", b"not wasm");
    let sel = PluginSelection {
        builtin: true,
        dir: Some(dir.clone()),
        ..Default::default()
    };
    let (specs, errors) = specs(&sel);
    assert_eq!(
        messages(&errors),
        [format!(
            "plugin {} refused: the name {taken:?} is already taken by the built-in plugin {taken}",
            dir.join(format!("{taken}.wasm")).display()
        )]
    );
    let mine = specs.last().unwrap();
    assert_eq!(mine.identity, Identity::Named("mine".into()));
    assert_eq!(mine.origin, PluginOrigin::File(dir.join("mine.wasm")));
    // Files never trigger a response unless granted.
    assert!(!mine.policy.may_respond(false));
}

#[test]
fn names_that_are_not_plugin_names_are_refused() {
    let dir = scratch("badname");
    put(&dir, "Not A Name.wasm", b"x");
    let sel = PluginSelection {
        dir: Some(dir.clone()),
        ..Default::default()
    };
    let (specs, errors) = specs(&sel);
    assert!(specs.is_empty());
    assert!(
        messages(&errors)[0].contains(
            "its name \"Not A Name\" (the file name without `.wasm`) is not a valid plugin name"
        ),
        "{errors:?}"
    );
}

#[test]
fn settings_and_policies_for_no_selected_plugin_are_errors() {
    let dir = scratch("unknown");
    put(&dir, "mine.wasm", b"x");
    let sel = PluginSelection {
        dir: Some(dir),
        settings: HashMap::from([("mine".into(), "{}".into()), ("mnie".into(), "{}".into())]),
        policies: HashMap::from([("other".into(), PluginPolicy::default())]),
        ..Default::default()
    };
    let unknown: Vec<String> = unknown_names(&sel)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        unknown,
        [
            "plugins.settings.mnie: no plugin named \"mnie\" is selected (plugins: mine)",
            "plugins.policy.other: no plugin named \"other\" is selected (plugins: mine)",
        ]
    );
    let (_, errors) = specs(&sel);
    assert_eq!(messages(&errors), unknown);
}

#[test]
fn a_pinned_digest_must_match() {
    let dir = scratch("pin");
    let p = put(&dir, "mine.wasm", b"plugin bytes");
    let actual = crate::digest(b"plugin bytes");
    let pinned = |pin: String| PluginSelection {
        dir: Some(dir.clone()),
        policies: HashMap::from([(
            "mine".into(),
            PluginPolicy {
                sha256: Some(pin),
                ..Default::default()
            },
        )]),
        ..Default::default()
    };
    let (specs_ok, errors) = specs(&pinned(actual.to_uppercase()));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(specs_ok.len(), 1);
    let wrong = "0".repeat(64);
    let (none, errors) = specs(&pinned(wrong.clone()));
    assert!(none.is_empty());
    assert_eq!(
        messages(&errors),
        [format!(
            "plugin {} refused: its SHA-256 is {actual}, but plugins.policy.mine.sha256 pins {wrong}",
            p.display()
        )]
    );
}

#[test]
fn a_refused_file_does_not_stop_the_others() {
    let dir = scratch("others");
    std::os::unix::fs::symlink("/dev/zero", dir.join("a-zero.wasm")).unwrap();
    put(&dir, "b-good.wasm", b"x");
    let sel = PluginSelection {
        dir: Some(dir),
        max_file_bytes: 16,
        ..Default::default()
    };
    let (specs, errors) = specs(&sel);
    assert_eq!(specs.len(), 1);
    assert!(messages(&errors)[0].contains("a-zero.wasm refused: it is a character device"));
}
