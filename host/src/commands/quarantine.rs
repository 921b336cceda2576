//! `vigil quarantine list` and `vigil quarantine release ID`: the
//! quarantine records of a data directory, read (and, for release,
//! updated) while `vigil run` may be running.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{ListFormat, QuarantineListArgs, QuarantineReleaseArgs};
use vigil_core::metrics::Registry;
use vigil_response::policy::DockerResponseConfig;
use vigil_response::store::{DB_FILE, Quarantine, State, Store};

/// Prints every record: a table, or JSON with the actions and findings.
pub fn list(args: QuarantineListArgs) -> anyhow::Result<ExitCode> {
    let records = if Store::dir_of(&args.data_dir).join(DB_FILE).is_file() {
        Store::open(&args.data_dir)?.list()?
    } else {
        Vec::new()
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json || args.format == ListFormat::Json {
        serde_json::to_writer_pretty(&mut out, &records)?;
        writeln!(out)?;
    } else {
        out.write_all(table(&records).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The table `vigil quarantine list` prints.
pub fn table(records: &[Quarantine]) -> String {
    let header = [
        "ID", "KIND", "TARGET", "NAME", "TIME", "RULE", "MODE", "STATE",
    ];
    let rows: Vec<[String; 8]> = records
        .iter()
        .map(|q| {
            // Target names and rules come from findings (a plugin's word) and
            // from the Engine or API server: escaped so that a name cannot
            // break the table or drive the terminal, and bounded.
            [
                cell(&q.id),
                q.kind.as_str().to_owned(),
                cell(&short(&q.target)),
                cell(&q.target_name),
                cell(&q.created.get(..19).unwrap_or(&q.created).replace('T', " ")),
                cell(&q.rule),
                q.mode.as_str().to_owned(),
                q.state.as_str().to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header);
    for r in &rows {
        line(&r.iter().map(String::as_str).collect::<Vec<_>>());
    }
    if rows.is_empty() {
        out.push_str("(no quarantine recorded)\n");
    }
    out
}

/// At most this many bytes of one cell of the table.
const CELL_BYTES: usize = 128;

fn cell(text: &str) -> String {
    vigil_core::text::escape_control(text, CELL_BYTES).into_owned()
}

/// A container id shortened like `docker ps` does; pod names unchanged.
fn short(target: &str) -> String {
    if target.len() == 64 && target.bytes().all(|b| b.is_ascii_hexdigit()) {
        target[..12].to_owned()
    } else {
        target.to_owned()
    }
}

/// Undoes a quarantine; exit 1 when something could not be restored.
pub fn release(args: QuarantineReleaseArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let docker = DockerResponseConfig {
        socket: args.docker_socket.clone(),
        ..DockerResponseConfig::default()
    };
    let registry = Registry::default();
    let (q, before) = rt.block_on(vigil_response::release(
        &args.data_dir,
        &args.id,
        docker,
        &registry,
    ))?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for a in &q.actions[before..] {
        writeln!(
            out,
            "{:<22} {:<8} {}",
            a.action,
            a.outcome.as_str(),
            vigil_core::text::escape_control(&a.detail, 1024)
        )?;
    }
    writeln!(out, "quarantine {}: {}", q.id, q.state.as_str())?;
    Ok(if q.state == State::Released {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
