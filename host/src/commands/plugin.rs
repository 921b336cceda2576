//! `vigil plugin test` and `vigil plugin inspect`: tools for plugin authors.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use crate::cli::{PluginInspectArgs, PluginTestArgs, hostname};
use crate::commands::read_settings;
use crate::replay::{ReplayOptions, replay};
use vigil_runtime::plugin_set::{
    DEFAULT_MAX_FILE_BYTES, FileNames, PluginSelection, default_cache_dir, read_plugin_file,
};
use vigil_runtime::{Clock, EngineSettings, RunContext, Runtime};

pub fn test(args: PluginTestArgs) -> anyhow::Result<ExitCode> {
    let stem = args
        .plugin
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    // An author's tool: the plugin is taken by the name it gives itself
    // (Cargo names its output `my_plugin.wasm` for `my-plugin`), and its
    // state is never persisted.
    let mut sel = PluginSelection {
        // With the built-ins, a correlator is handed their findings.
        builtin: args.with_builtin,
        files: vec![args.plugin.clone()],
        file_names: FileNames::Described,
        ..Default::default()
    };
    if let Some(s) = &args.settings {
        sel.settings.insert(stem, read_settings(s)?);
    }
    let opts = ReplayOptions {
        paths: vec![args.events.clone()],
        format: vigil_normalize::Format::Auto,
        plugins: sel,
        node: hostname(),
        batch: vigil_runtime::dispatch::DEFAULT_BATCH,
        cache_dir: default_cache_dir(),
        intel_files: args.intel.clone(),
        // One plugin (or a few with the built-ins): nothing worth a pool.
        threads: 1,
    };
    let mut buf = Vec::new();
    let mut input_errors = Vec::new();
    let report = replay(&opts, &mut buf, &mut |e| input_errors.push(e.to_string()))?;
    for e in &input_errors {
        eprintln!("vigil plugin test: {e}");
    }
    let builtins = if args.with_builtin {
        vigil_runtime::builtin::names().count()
    } else {
        0
    };
    if report.plugins_loaded <= builtins {
        eprintln!("vigil plugin test: the plugin was not loaded (see the error above)");
        return Ok(ExitCode::from(1));
    }
    // Only the tested plugin's findings: the built-ins' are its input.
    let mut lines = Vec::new();
    let mut actual: Vec<Value> = Vec::new();
    for line in buf.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let finding: Value = serde_json::from_slice(line)?;
        let by_builtin = finding["plugin"]
            .as_str()
            .is_some_and(|p| vigil_runtime::builtin::names().any(|b| b == p));
        if args.with_builtin && by_builtin {
            continue;
        }
        lines.push(line);
        actual.push(finding);
    }
    let Some(expect) = &args.expect else {
        let mut out = std::io::stdout().lock();
        for line in lines {
            out.write_all(line)?;
            out.write_all(b"\n")?;
        }
        return Ok(ExitCode::from(
            if report.failed_calls > 0 || !input_errors.is_empty() {
                1
            } else {
                0
            },
        ));
    };
    let text = std::fs::read_to_string(expect)
        .with_context(|| format!("cannot read {}", expect.display()))?;
    let expected: Vec<Value> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not JSON", expect.display(), i + 1))
        })
        .collect::<Result<_, _>>()?;
    let problems = compare(&expected, &actual);
    if problems.is_empty() && report.failed_calls == 0 {
        println!("ok: {} findings as expected", actual.len());
        return Ok(ExitCode::SUCCESS);
    }
    if report.failed_calls > 0 {
        println!(
            "FAIL: the plugin faulted {} time(s); see the log above",
            report.failed_calls
        );
    }
    for p in problems {
        println!("{p}");
    }
    Ok(ExitCode::from(1))
}

/// Each expected object must be a subset of the actual finding at the
/// same position (objects inside lists of the same length too); returns a
/// human-readable diff of what does not match.
pub fn compare(expected: &[Value], actual: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..expected.len().max(actual.len()) {
        match (expected.get(i), actual.get(i)) {
            (Some(e), Some(a)) => {
                let mut diffs = Vec::new();
                subset(e, a, String::new(), &mut diffs);
                if !diffs.is_empty() {
                    out.push(format!("finding #{}: mismatch", i + 1));
                    out.extend(diffs);
                }
            }
            (Some(e), None) => out.push(format!("finding #{}: missing\n- {e}", i + 1)),
            (None, Some(a)) => out.push(format!("finding #{}: unexpected\n+ {a}", i + 1)),
            (None, None) => {}
        }
    }
    out
}

fn subset(e: &Value, a: &Value, path: String, diffs: &mut Vec<String>) {
    match (e, a) {
        (Value::Object(eo), Value::Object(ao)) => {
            for (k, ev) in eo {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match ao.get(k) {
                    Some(av) => subset(ev, av, p, diffs),
                    None => diffs.push(format!("  {p}:\n  - {ev}\n  + (absent)")),
                }
            }
        }
        // Element by element, so that an expected entity stays a subset of
        // the actual one when the host adds fields to it (`verified`).
        (Value::Array(ea), Value::Array(aa)) if ea.len() == aa.len() => {
            for (i, (ev, av)) in ea.iter().zip(aa).enumerate() {
                subset(ev, av, format!("{path}[{i}]"), diffs);
            }
        }
        _ if e == a => {}
        _ => diffs.push(format!(
            "  {}:\n  - {e}\n  + {a}",
            if path.is_empty() { "(finding)" } else { &path }
        )),
    }
}

pub fn inspect(args: PluginInspectArgs) -> anyhow::Result<ExitCode> {
    let bytes = read_plugin_file(&args.plugin, DEFAULT_MAX_FILE_BYTES)?;
    let runtime = Runtime::new(&EngineSettings::default(), default_cache_dir().as_deref())?;
    let label = args.plugin.display().to_string();
    let (imports, stats) = runtime.imports(&label, &bytes)?;
    let forbidden: Vec<&String> = imports
        .iter()
        .filter(|i| !vigil_runtime::import_allowed(i))
        .collect();
    let mut report = serde_json::json!({
        "file": label,
        "sha256": vigil_runtime::digest(&bytes),
        "size_bytes": bytes.len(),
        "compile_ms": stats.duration.as_secs_f64() * 1e3,
        "from_cache": matches!(stats.source, vigil_runtime::CompileSource::Cache),
        "imports": imports,
        "forbidden_imports": forbidden,
    });
    let code = if forbidden.is_empty() {
        let ctx = RunContext {
            clock: Clock::Wall,
            intel: Default::default(),
            state_dir: None,
        };
        let spec = vigil_runtime::PluginSpec {
            origin: vigil_runtime::PluginOrigin::File(args.plugin.clone()),
            identity: vigil_runtime::Identity::Described,
            bytes: bytes.into(),
            settings: "{}".into(),
            limits: Default::default(),
            policy: Default::default(),
        };
        match runtime.load(spec, &ctx) {
            Ok(r) => {
                let info = &r.plugin().info;
                report["describe"] = serde_json::to_value(info)?;
                report["packed_batches"] = Value::Bool(r.plugin().takes_packed());
                let sub = r.subscription();
                report["subscriptions"] = serde_json::json!({
                    "declared": sub.declared(),
                    "filters": sub.set(),
                    "summary": sub.describe(),
                });
                report["receives_findings"] = Value::Bool(r.plugin().takes_findings());
                // WIT 0.1.5: findings handed over packed (`packed-correlate`).
                report["packed_findings"] = Value::Bool(r.plugin().takes_packed_findings());
                // Heartbeats (WIT 0.1.3, `fleet`): only `vigil fleet` hands
                // them on, to a plugin that exports the interface.
                report["receives_heartbeats"] = Value::Bool(r.plugin().takes_heartbeats());
                // Swarm events (WIT 0.1.3): exported, and received (the
                // policy may withhold them with container events).
                report["service_events"] = serde_json::json!({
                    "exported": r.plugin().exports_services(),
                    "filter": sub.services(),
                });
                // Process events (WIT 0.1.3), likewise.
                report["process_events"] = serde_json::json!({
                    "exported": r.plugin().exports_processes(),
                    "filter": sub.processes(),
                });
                // `--plugin-dir` names a plugin by its file: say so before
                // the operator finds it refused there.
                let stem = args.plugin.file_stem().map(|s| s.to_string_lossy());
                if stem.as_deref() != Some(info.name.as_str()) {
                    report["warning"] = Value::String(format!(
                        "in a plugin directory this file would be refused: a plugin's name is its file name, so name it {}.wasm",
                        info.name
                    ));
                }
                0
            }
            Err(e) => {
                report["error"] = Value::String(e.to_string());
                1
            }
        }
    } else {
        report["error"] =
            Value::String("refused: imports interfaces Vigil does not provide".into());
        1
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::from(code))
}

#[cfg(test)]
mod tests {
    use super::compare;
    use serde_json::json;

    #[test]
    fn expected_entities_are_subsets_of_the_actual_ones() {
        let actual = [json!({"rule_id": "p/r", "entities": [
            {"kind": "container", "id": "c0ffee", "name": "web", "verified": true},
            {"kind": "image", "id": "nginx:1.25"}
        ]})];
        let fits = [json!({"entities": [
            {"kind": "container", "id": "c0ffee", "name": "web"},
            {"kind": "image", "id": "nginx:1.25"}
        ]})];
        assert!(compare(&fits, &actual).is_empty());
        let other = [json!({"entities": [
            {"kind": "container", "id": "c0ffee", "verified": false},
            {"kind": "image", "id": "nginx:1.25"}
        ]})];
        let diff = compare(&other, &actual).join("\n");
        assert!(diff.contains("entities[0].verified"), "{diff}");
        let shorter = [json!({"entities": [{"kind": "image", "id": "nginx:1.25"}]})];
        assert!(!compare(&shorter, &actual).is_empty());
    }
}
