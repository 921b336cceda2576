//! `vigil plugin new --lang rust|python|c NAME`: scaffolds a plugin project
//! whose own test passes. The templates (`host/templates/plugin-new/`) and
//! the WIT contract (`wit/`) are embedded in the binary, so the project is
//! self-contained: it needs this `vigil` and the language's toolchain, not
//! this repository (except a Rust project, which depends on
//! `vigil-plugin-sdk` by path).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::cli::{PluginKind, PluginLang, PluginNewArgs};

/// One file of a project: its path inside the project, its text (with
/// `{{…}}` placeholders), and whether it is a script.
struct Template {
    path: &'static str,
    text: &'static str,
    executable: bool,
    /// Copied verbatim (the WIT contract), no placeholder substitution.
    verbatim: bool,
}

macro_rules! template {
    ($path:literal, $file:literal) => {
        template!($path, $file, false)
    };
    ($path:literal, $file:literal, $exec:expr) => {
        Template {
            path: $path,
            text: include_str!(concat!("../../templates/plugin-new/", $file)),
            executable: $exec,
            verbatim: false,
        }
    };
}

/// Every language: the test script, the sample events and expected findings.
const COMMON: &[Template] = &[
    template!("test.sh", "common/test.sh", true),
    template!("tests/events.jsonl", "common/tests/events.jsonl"),
    template!("tests/expected.jsonl", "common/tests/expected.jsonl"),
    template!(".gitignore", "common/gitignore"),
];

/// Every language's correlator: the sample events make two built-ins report
/// one container (with the sample C2 feed), the expected finding is the
/// correlator's.
const COMMON_CORRELATOR: &[Template] = &[
    template!("test.sh", "common/test.sh", true),
    template!("tests/events.jsonl", "common/correlator/tests/events.jsonl"),
    template!(
        "tests/expected.jsonl",
        "common/correlator/tests/expected.jsonl"
    ),
    template!("tests/intel.txt", "common/correlator/tests/intel.txt"),
    template!(".gitignore", "common/gitignore"),
];

const RUST: &[Template] = &[
    template!("Cargo.toml", "rust/Cargo.toml"),
    template!("src/lib.rs", "rust/src/lib.rs"),
    template!("build.sh", "rust/build.sh", true),
    template!("README.md", "rust/README.md"),
];

const RUST_CORRELATOR: &[Template] = &[
    template!("Cargo.toml", "rust/Cargo.toml"),
    template!("src/lib.rs", "rust/correlator/lib.rs"),
    template!("build.sh", "rust/build.sh", true),
    template!("README.md", "rust/README.md"),
];

const PYTHON: &[Template] = &[
    template!("src/app.py", "python/src/app.py"),
    template!("build.sh", "python/build.sh", true),
    template!("README.md", "python/README.md"),
];

const PYTHON_CORRELATOR: &[Template] = &[
    template!("src/app.py", "python/correlator/app.py"),
    template!("build.sh", "python/build.sh", true),
    template!("README.md", "python/README.md"),
];

const C: &[Template] = &[
    template!("src/plugin.c", "c/src/plugin.c"),
    template!("build.sh", "c/build.sh", true),
    template!("README.md", "c/README.md"),
    // The settings reader of plugins/c/shell-exec, shared rather than copied.
    Template {
        path: "src/json.c",
        text: include_str!("../../../plugins/c/shell-exec/src/json.c"),
        executable: false,
        verbatim: true,
    },
    Template {
        path: "src/json.h",
        text: include_str!("../../../plugins/c/shell-exec/src/json.h"),
        executable: false,
        verbatim: true,
    },
];

/// The contract, for the languages whose bindings are generated in the project.
const WIT: &[Template] = &[
    Template {
        path: "wit/detector.wit",
        text: include_str!("../../../wit/detector.wit"),
        executable: false,
        verbatim: true,
    },
    Template {
        path: "wit/types.wit",
        text: include_str!("../../../wit/types.wit"),
        executable: false,
        verbatim: true,
    },
];

/// Where the SDK was when this binary was built.
const BUILD_TREE_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugin-sdk");

pub fn new(args: &PluginNewArgs) -> anyhow::Result<ExitCode> {
    check_name(&args.name)?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    let sdk_path = match args.lang {
        PluginLang::Rust => Some(sdk_path(args.sdk_path.as_deref())?),
        PluginLang::Python | PluginLang::C => {
            if args.sdk_path.is_some() {
                bail!("--sdk-path only applies to --lang rust");
            }
            None
        }
    };
    if dir.exists()
        && std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!("{} exists and is not empty", dir.display());
    }
    let correlator = args.kind == PluginKind::Correlator;
    let vars = Vars {
        name: &args.name,
        name_snake: &args.name.replace('-', "_"),
        sdk_path: sdk_path
            .as_deref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        world: if correlator { "correlator" } else { "detector" },
        test_flags: if correlator {
            CORRELATOR_TEST_FLAGS
        } else {
            ""
        },
        about: about(args.lang, args.kind),
    };
    let files: Vec<&Template> = match (args.lang, args.kind) {
        (PluginLang::Rust, PluginKind::Detector) => RUST.iter().chain(COMMON).collect(),
        (PluginLang::Rust, PluginKind::Correlator) => {
            RUST_CORRELATOR.iter().chain(COMMON_CORRELATOR).collect()
        }
        (PluginLang::Python, PluginKind::Detector) => {
            PYTHON.iter().chain(WIT).chain(COMMON).collect()
        }
        (PluginLang::Python, PluginKind::Correlator) => PYTHON_CORRELATOR
            .iter()
            .chain(WIT)
            .chain(COMMON_CORRELATOR)
            .collect(),
        (PluginLang::C, PluginKind::Detector) => C.iter().chain(WIT).chain(COMMON).collect(),
        (PluginLang::C, PluginKind::Correlator) => bail!(
            "--kind correlator is scaffolded for --lang rust and python; a C correlator \
             implements the world `correlator` of wit/detector.wit (export `correlate`)"
        ),
    };
    for t in files {
        write(&dir, t, &vars)?;
    }
    let lang = match args.lang {
        PluginLang::Rust => "Rust",
        PluginLang::Python => "Python",
        PluginLang::C => "C",
    };
    let vigil = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "vigil".into());
    println!(
        "created the {lang} plugin `{}` in {}\nbuild and test it: cd {} && VIGIL={vigil} ./test.sh (see README.md)",
        args.name,
        dir.display(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The same rule as the runtime's check of `describe().name`, plus a leading
/// letter so that the name is also a valid crate and file name.
fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid {
        bail!(
            "plugin name {name:?}: use 1-64 characters of a-z, 0-9, '-' or '_', starting with a letter"
        );
    }
    Ok(())
}

fn sdk_path(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let (path, origin) = match given {
        Some(p) => (p.to_owned(), "--sdk-path"),
        None => (
            PathBuf::from(BUILD_TREE_SDK),
            "the source tree this vigil was built from",
        ),
    };
    let manifest = path.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| {
        anyhow::anyhow!(
            "no vigil-plugin-sdk at {} ({origin}): {e}; pass --sdk-path to a Vigil checkout's plugin-sdk/",
            path.display()
        )
    })?;
    if !text.contains("name = \"vigil-plugin-sdk\"") {
        bail!(
            "{} is not the vigil-plugin-sdk crate ({origin})",
            manifest.display()
        );
    }
    std::fs::canonicalize(&path).with_context(|| format!("cannot resolve {}", path.display()))
}

/// What a correlator's `test.sh` adds to `vigil plugin test`: the built-ins
/// run too (their findings are the correlator's input), with the sample feed.
const CORRELATOR_TEST_FLAGS: &str = " \\\n    --with-builtin --intel \"$here/tests/intel.txt\"";

struct Vars<'a> {
    name: &'a str,
    name_snake: &'a str,
    sdk_path: String,
    /// The WIT world the project builds (`detector` or `correlator`).
    world: &'a str,
    /// Extra `vigil plugin test` arguments of `test.sh`.
    test_flags: &'a str,
    /// The README's opening: what the sample does.
    about: String,
}

/// The README's opening for a language and kind.
fn about(lang: PluginLang, kind: PluginKind) -> String {
    let (lang, flag) = match lang {
        PluginLang::Rust => ("Rust", "rust"),
        PluginLang::Python => ("Python", "python"),
        PluginLang::C => ("C", "c"),
    };
    match kind {
        PluginKind::Detector => format!(
            "A Vigil detector plugin in {lang}, scaffolded by\n\
             `vigil plugin new --lang {flag} {{{{name}}}}`. The sample rule,\n\
             `{{{{name}}}}/privileged-exec`, reports exec sessions started with `--privileged`\n\
             in a container; replace it with your own."
        ),
        PluginKind::Correlator => format!(
            "A Vigil correlation plugin in {lang}, scaffolded by\n\
             `vigil plugin new --lang {flag} --kind correlator {{{{name}}}}`. Besides events, it\n\
             receives the findings the other plugins reported (never its own), each with\n\
             the reporting plugin's name as the operator gave it, its depth and the host's\n\
             verdict on each entity (`on_findings` / `Correlate.on_findings`). The sample\n\
             rule, `{{{{name}}}}/multi-plugin`, reports a container that two or more other\n\
             plugins reported, once, naming them and the findings it stands on; replace it\n\
             with your own.\n\n\
             Count only verified containers and pods: a plugin can name anything, the host\n\
             verifies what it was shown, and a correlator's own findings are verified only\n\
             for the verified entities of the findings it was handed. Findings of depth 1\n\
             or more come from other correlators; the host hands on none at its depth bound\n\
             (`plugins.limits.max_finding_depth`), so no loop can form. `test.sh` runs the\n\
             built-in plugins too (`vigil plugin test --with-builtin`), with the sample C2\n\
             feed `tests/intel.txt`: their findings on `tests/events.jsonl` are the input."
        ),
    }
}

impl Vars<'_> {
    fn apply(&self, text: &str) -> String {
        // The SDK path goes into a TOML basic string.
        let sdk = self.sdk_path.replace('\\', "\\\\").replace('"', "\\\"");
        text.replace("{{about}}", &self.about)
            .replace("{{name_snake}}", self.name_snake)
            .replace("{{name}}", self.name)
            .replace("{{sdk_path}}", &sdk)
            .replace("{{vigil_version}}", env!("CARGO_PKG_VERSION"))
            .replace("{{world}}", self.world)
            .replace("{{test_flags}}", self.test_flags)
    }
}

fn write(dir: &Path, t: &Template, vars: &Vars<'_>) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(t.path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let text = if t.verbatim {
        t.text.to_owned()
    } else {
        vars.apply(t.text)
    };
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    if t.executable {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make {} executable", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_runtime_rule() {
        for ok in ["a", "shell-exec", "my_plugin2"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "2fast", "-x", "Caps", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_placeholder_is_known() {
        let vars = Vars {
            name: "demo-plugin",
            name_snake: "demo_plugin",
            sdk_path: "/sdk".into(),
            world: "correlator",
            test_flags: CORRELATOR_TEST_FLAGS,
            about: about(PluginLang::Python, PluginKind::Correlator),
        };
        let all = [
            RUST,
            RUST_CORRELATOR,
            PYTHON,
            PYTHON_CORRELATOR,
            C,
            COMMON,
            COMMON_CORRELATOR,
        ];
        for t in all.iter().flat_map(|l| l.iter()) {
            let text = vars.apply(t.text);
            assert!(!text.contains("{{"), "{}: unknown placeholder", t.path);
        }
    }
}
