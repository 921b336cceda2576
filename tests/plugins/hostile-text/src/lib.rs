//! Says hostile things: a log message that ends its line and forges a host
//! record, ANSI escapes in the log, the version and the description (which
//! are also far too long), and, by its settings, a refusal with a flood of
//! escaped problems (`{"mode":"problems"}`) or a log call whose fields alias
//! one 32 MiB buffer, past wasmtime's limit on data copied by one host call
//! (`{"mode":"fuel"}`).
use vigil_plugin_sdk::prelude::*;

const NAME: &str = "hostile-text";

/// What a forged host record looks like in Vigil's text log format.
const FORGED: &str = "1999-01-01T00:00:00.000000Z ERROR vigil: FORGED-LINE plugin=\"container-escape\"";

#[derive(Default)]
struct Hostile {
    fuel: bool,
}

impl Detector for Hostile {
    fn describe() -> PluginInfo {
        let version = format!("1.0.0\n{FORGED}\x1b[31m{}", "v".repeat(5000));
        let description = format!("hostile\r\x1b]0;pwned\x07{}", "d".repeat(100_000));
        PluginInfo::builder(NAME, &version)
            .description(&description)
            .subscribe(EventKind::Container)
            .subscribe(EventKind::Kubernetes)
            .build()
    }

    fn configure(&mut self, settings: &str) -> Result<(), ConfigError> {
        if settings.contains("\"problems\"") {
            let problems = (0..1000)
                .map(|i| {
                    ConfigProblem::new(
                        format!("key{i}\n{FORGED}"),
                        format!("\x1b[2Jbad{}", "p".repeat(10_000)),
                    )
                })
                .collect();
            return Err(ConfigError { problems });
        }
        self.fuel = settings.contains("\"fuel\"");
        Ok(())
    }

    fn on_events(&mut self, _batch: &[Event]) -> Vec<Finding> {
        if self.fuel {
            log_past_the_hostcall_limit();
        } else {
            vigil_plugin_sdk::host::log::warn(
                &format!("innocent\n{FORGED}\r\x1b[2J\x1b[31mred"),
                &[("key\nFORGED-KEY", "value\x1b[0m\u{9b}31m")],
            );
        }
        Vec::new()
    }
}

/// One `log` call whose message and fields all point at the same 32 MiB:
/// the guest holds 32 MiB, the host would copy 32 × 9 MiB.
fn log_past_the_hostcall_limit() {
    use std::mem::ManuallyDrop;
    use vigil_plugin_sdk::bindings::vigil::detector::log;

    let buffer = ManuallyDrop::new("a".repeat(32 << 20));
    // SAFETY: every alias points at `buffer`, which is never freed, and the
    // aliases are never dropped (the vector is forgotten below), so nothing
    // is freed twice; the host only reads them.
    let alias = || unsafe {
        String::from_raw_parts(buffer.as_ptr().cast_mut(), buffer.len(), buffer.capacity())
    };
    let fields: Vec<KeyValue> = (0..4)
        .map(|_| KeyValue {
            key: alias(),
            value: alias(),
        })
        .collect();
    log::log(log::Level::Info, &buffer, &fields);
    std::mem::forget(fields);
}

export_detector!(Hostile);
