//! The command line, parsed by clap. Raw arguments here; commands turn them
//! into validated options.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use vigil_normalize::Format;

/// Vigil: detects container-based evasion with sandboxed WebAssembly detector plugins.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr (default: `[log] format` of the config file, else text).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter (tracing EnvFilter syntax, e.g. `info` or `vigil=debug`); overrides VIGIL_LOG and `[log] level`.
    #[arg(long, global = true)]
    pub log: Option<String>,
}

pub use crate::config::LogFormat;

#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once at startup; boxing `RunArgs` would buy nothing"
)]
pub enum Command {
    /// Replay recorded input through the plugins; one finding per line on stdout.
    Replay(ReplayArgs),
    /// Plugin author tools.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Run the host on this machine's live sources with the built-in plugins.
    Run(RunArgs),
    /// Configuration file tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Quarantines taken by the responder: list them, release one.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Watch the fleet: consume every node's findings and heartbeats from NATS JetStream and report fleet findings.
    Fleet(FleetArgs),
    /// Recent events and findings of a container, pod or service, in time order, from a running host or a data directory.
    Timeline(TimelineArgs),
}

#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// The entity: container:NAME_OR_ID, pod:NAMESPACE/NAME or service:NAME_OR_ID.
    #[arg(value_name = "ENTITY")]
    pub entity: String,
    /// Ask the admin endpoint of a running host (e.g. http://127.0.0.1:9464). Without --admin or --data-dir: the default endpoint, else the default data directory.
    #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
    pub admin: Option<String>,
    /// Read the timeline a host wrote to its data directory (DIR/timeline.json; a stopped host's).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TimelineFormat::Text)]
    pub format: TimelineFormat,
}

/// How `vigil timeline` prints.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum TimelineFormat {
    /// One line per event or finding: time, kind, source, summary (escaped for the terminal).
    Text,
    /// The timeline as JSON (what the admin endpoint's /timeline answers).
    Json,
}

#[derive(Debug, Args)]
pub struct FleetArgs {
    /// TOML configuration file: `[fleet]` (the stream, lease, rules) and the outputs, spool and dedup of the fleet findings.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Node name stamped on the fleet findings (default: this host's name).
    #[arg(long)]
    pub node: Option<String>,
    /// Data directory: the fleet findings' spool (default /var/lib/vigil).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List the quarantines (and dry-run records) of the data directory.
    List(QuarantineListArgs),
    /// Release a quarantine: Docker: rename back, reconnect the networks, unpause; Kubernetes: remove the label, delete the NetworkPolicy.
    Release(QuarantineReleaseArgs),
}

#[derive(Debug, Args)]
pub struct QuarantineListArgs {
    /// Data directory of the `vigil run` that took the quarantines.
    #[arg(long, default_value = crate::config::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Shorthand for `--format json`.
    #[arg(long)]
    pub json: bool,
}

/// How `vigil quarantine list` prints.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ListFormat {
    /// Aligned columns.
    Table,
    /// One JSON array with every record, its actions and findings.
    Json,
}

#[derive(Debug, Args)]
pub struct QuarantineReleaseArgs {
    /// The quarantine id (first column of `vigil quarantine list`).
    pub id: String,
    /// Data directory of the `vigil run` that took the quarantine.
    #[arg(long, default_value = crate::config::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Docker Engine API socket.
    #[arg(long, value_name = "PATH", default_value = vigil_core::docker::DEFAULT_SOCKET)]
    pub docker_socket: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration file: every problem with its path (exit 1), or a summary (exit 0).
    /// Also loads each plugin with its settings, so that the plugins' own checks run.
    Check(ConfigCheckArgs),
}

#[derive(Debug, Args)]
pub struct ConfigCheckArgs {
    /// The TOML configuration file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Do not load the plugins (check the file alone).
    #[arg(long)]
    pub no_plugins: bool,
}

/// Options shared by commands that load plugins.
#[derive(Debug, Args, Clone)]
pub struct PluginArgs {
    /// Also load every `*.wasm` plugin of this directory.
    #[arg(long, value_name = "DIR")]
    pub plugin_dir: Option<PathBuf>,
    /// Do not load the built-in plugins.
    #[arg(long)]
    pub no_builtin: bool,
    /// Settings for a plugin: NAME=FILE, the file holding a JSON object (repeatable).
    #[arg(long = "plugin-settings", value_name = "NAME=FILE")]
    pub plugin_settings: Vec<String>,
    /// Per-call deadline of every plugin, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub plugin_deadline_ms: Option<u64>,
    /// First re-instantiation delay after a plugin fault, in milliseconds (doubles per consecutive fault).
    #[arg(long, value_name = "MS")]
    pub plugin_backoff_ms: Option<u64>,
    /// Findings kept from one plugin call; the excess is dropped and counted.
    #[arg(long, value_name = "N")]
    pub plugin_max_findings: Option<usize>,
    /// Largest finding accepted from a plugin, in bytes; a larger one is invalid output (a fault).
    #[arg(long, value_name = "BYTES")]
    pub plugin_max_finding_bytes: Option<usize>,
    /// Consecutive faults after which a plugin is disabled.
    #[arg(long, value_name = "N")]
    pub plugin_max_faults: Option<u32>,
    /// Memory cap of every plugin, in MiB.
    #[arg(long, value_name = "MIB")]
    pub plugin_memory_mib: Option<usize>,
    /// How deep findings are handed on to plugins that receive findings (`plugins.limits.max_finding_depth`, default 2; 0: none).
    #[arg(long, value_name = "N")]
    pub plugin_max_finding_depth: Option<u32>,
    /// Largest plugin file read, in bytes (`plugins.max_file_bytes`; default 64 MiB); a larger one is refused.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub plugin_max_file_bytes: Option<u64>,
    /// Also trust this minisign public key for plugin files (`plugins.trusted_keys`): the base64 `RW…`
    /// key or a minisign `.pub` file. Repeatable.
    #[arg(long = "trusted-key", value_name = "KEY|FILE")]
    pub trusted_keys: Vec<String>,
    /// Refuse every plugin file without a valid signature by a trusted key (`plugins.require_signature`).
    #[arg(long)]
    pub require_signature: bool,
    /// Compile cache directory (default: $XDG_CACHE_HOME/vigil/plugins or ~/.cache/vigil/plugins).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Do not use the compile cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Threat-intel feed files (plain IP/CIDR lists or abuse.ch CSV) answered to plugins.
    #[arg(long = "intel", value_name = "FILE")]
    pub intel: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Input format.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    pub format: Format,
    #[command(flatten)]
    pub plugins: PluginArgs,
    /// Node name stamped on events and findings (default: this host's name).
    #[arg(long)]
    pub node: Option<String>,
    /// Events per plugin call.
    #[arg(long, default_value_t = vigil_runtime::dispatch::DEFAULT_BATCH)]
    pub batch: usize,
    /// Threads for normalising and plugin calls (default: the cores this process may run on); the findings are the same, in the same order, for any number.
    #[arg(long, value_name = "N")]
    pub threads: Option<std::num::NonZeroUsize>,
    /// Print a JSON summary of the replay on stderr at the end.
    #[arg(long)]
    pub stats: bool,
    /// Files to replay (`-` for stdin).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Run a plugin on recorded events and compare its findings with the expected ones.
    Test(PluginTestArgs),
    /// Show a plugin's description and imports.
    Inspect(PluginInspectArgs),
    /// Create a plugin project (Rust, Python or C) whose own test passes.
    New(PluginNewArgs),
    /// Sign plugin files with a minisign secret key: writes PLUGIN.wasm.minisig beside each.
    Sign(PluginSignArgs),
    /// Check plugin files' minisign signatures (PLUGIN.wasm.minisig) against trusted public keys.
    Verify(PluginVerifyArgs),
    /// Create a minisign key pair for `vigil plugin sign` (also usable by `minisign` itself).
    Keygen(PluginKeygenArgs),
}

/// Where a secret key's password comes from: never a prompt, so that
/// signing runs the same in CI as at a terminal.
pub const SIGN_PASSWORD_ENV: &str = "VIGIL_SIGN_PASSWORD";

#[derive(Debug, Args)]
pub struct PluginSignArgs {
    /// The plugin files to sign.
    #[arg(required = true, value_name = "PLUGIN.wasm")]
    pub plugins: Vec<PathBuf>,
    /// The minisign secret key file (`minisign -G` or `vigil plugin keygen`).
    #[arg(short = 's', long, value_name = "FILE")]
    pub secret_key: PathBuf,
    /// File whose first line is the secret key's password (else $VIGIL_SIGN_PASSWORD; unencrypted keys need none).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// The signed comment (one line; default: `timestamp:<unix time>\tfile:<name>\thashed`, as minisign writes).
    #[arg(short = 't', long, value_name = "TEXT")]
    pub trusted_comment: Option<String>,
}

#[derive(Debug, Args)]
pub struct PluginVerifyArgs {
    /// The plugin files to check; each must have a valid PLUGIN.wasm.minisig.
    #[arg(required = true, value_name = "PLUGIN.wasm")]
    pub plugins: Vec<PathBuf>,
    /// A trusted public key: the base64 `RW…` string or a minisign .pub file (repeatable).
    #[arg(short = 'p', long = "public-key", value_name = "KEY")]
    pub public_keys: Vec<String>,
    /// Also trust the `[plugins] trusted_keys` of this configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PluginKeygenArgs {
    /// Where to write the public key (minisign's .pub format).
    #[arg(short = 'p', long, value_name = "FILE")]
    pub public_key: PathBuf,
    /// Where to write the secret key (mode 0600).
    #[arg(short = 's', long, value_name = "FILE")]
    pub secret_key: PathBuf,
    /// Encrypt the secret key with the password on this file's first line (else $VIGIL_SIGN_PASSWORD).
    #[arg(long, value_name = "FILE", conflicts_with = "unencrypted")]
    pub password_file: Option<PathBuf>,
    /// Store the secret key without a password (as `minisign -G -W`).
    #[arg(short = 'W', long)]
    pub unencrypted: bool,
    /// Overwrite existing key files.
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct PluginTestArgs {
    /// The plugin component.
    pub plugin: PathBuf,
    /// Recorded events (any format `vigil replay` reads).
    #[arg(long)]
    pub events: PathBuf,
    /// Settings JSON file for the plugin.
    #[arg(long)]
    pub settings: Option<PathBuf>,
    /// Expected findings, JSON lines; each line's fields must match the finding at the same position.
    #[arg(long)]
    pub expect: Option<PathBuf>,
    /// Run the built-in plugins too, so that a correlator receives their findings; only the
    /// tested plugin's findings are printed and compared.
    #[arg(long)]
    pub with_builtin: bool,
    /// A threat-intel feed file for the run (repeatable), as `vigil replay --intel`.
    #[arg(long, value_name = "FILE")]
    pub intel: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PluginInspectArgs {
    /// The plugin component.
    pub plugin: PathBuf,
}

/// `vigil run`. Every flag overrides the matching key of `--config FILE`
/// (or of the embedded defaults when there is no file).
#[derive(Debug, Args)]
pub struct PluginNewArgs {
    /// The plugin's name: 1-64 characters of a-z, 0-9, '-' or '_', starting with a letter.
    pub name: String,
    /// The language of the project.
    #[arg(long, value_enum)]
    pub lang: PluginLang,
    /// What the plugin does: a detector of events, or a correlator that also receives the
    /// findings of the other plugins (rust and python).
    #[arg(long, value_enum, default_value_t = PluginKind::Detector)]
    pub kind: PluginKind,
    /// Where to create the project (default: ./NAME); it must not exist, or be empty.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Rust only: the `vigil-plugin-sdk` crate the project depends on by path (default: the
    /// `plugin-sdk/` of the source tree this `vigil` was built from, when it still exists).
    #[arg(long, value_name = "PATH")]
    pub sdk_path: Option<PathBuf>,
}

/// The kinds of plugin `vigil plugin new` scaffolds.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum PluginKind {
    /// Examines events (world `detector`).
    Detector,
    /// Also examines the findings of the other plugins (world `correlator`).
    Correlator,
}

/// The languages `vigil plugin new` scaffolds.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum PluginLang {
    /// Rust with `vigil-plugin-sdk`, built for wasm32-unknown-unknown.
    Rust,
    /// Python with componentize-py (`--stub-wasi`).
    Python,
    /// C with wit-bindgen's C bindings, clang and wasi-libc, off stdio.
    C,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// TOML configuration file (see config/vigil.example.toml); flags override it.
    /// Reloaded on SIGHUP and when it changes.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub plugins: PluginArgs,
    /// Node name (default: this host's name).
    #[arg(long)]
    pub node: Option<String>,
    /// Data directory: plugin state, compile cache (default /var/lib/vigil).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Admin HTTP endpoint address (/metrics, /healthz, /readyz; default 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// Do not serve the admin HTTP endpoint.
    #[arg(long)]
    pub no_admin: bool,
    /// Do not reload when the config file or the plugin directory changes (SIGHUP still reloads).
    #[arg(long)]
    pub no_watch: bool,
    /// Dedup window in seconds (`[dedup] window_secs`, default 60; 0: every finding delivered on its own).
    #[arg(long, value_name = "SECS")]
    pub dedup_window_secs: Option<u64>,
    /// How often the threat-intel feed files are checked for changes, in milliseconds (default 1000; reloaded once a change has settled for one more interval); 0 never reloads them.
    #[arg(long, value_name = "MS")]
    pub intel_poll_ms: Option<u64>,
    /// Docker Engine API socket the `docker` source reads (default /var/run/docker.sock).
    #[arg(long, value_name = "PATH")]
    pub docker_socket: Option<PathBuf>,
    /// Do not start the `docker` source.
    #[arg(long)]
    pub no_docker: bool,
    /// Do not start the network sources (`procfs` container sockets and `conntrack` flows).
    #[arg(long)]
    pub no_network: bool,
    /// Do not start the `conntrack` network listener (new connections over netlink); the procfs poller still runs. Sets `sources.network.conntrack = false`.
    #[arg(long)]
    pub no_conntrack: bool,
    /// How often the network source reads the socket tables, in milliseconds (default 1000); a connection shorter than this can be missed by the poller (conntrack sees those of bridge-networked containers).
    #[arg(long, value_name = "MS")]
    pub network_interval_ms: Option<u64>,
    /// Also emit the sockets of the host itself (not in any container).
    #[arg(long)]
    pub network_include_host: bool,
    /// Start the `ebpf` source (every outbound connect, seen in the kernel; `sources.ebpf.enabled = true`). Where the kernel programs cannot load it is off with the reason logged.
    #[arg(long, conflicts_with = "no_ebpf")]
    pub ebpf: bool,
    /// Do not start the `ebpf` source (`sources.ebpf.enabled = false`).
    #[arg(long)]
    pub no_ebpf: bool,
    /// Also write every normalised event and process event, as a Vigil JSON line, to this file (debugging; replayable with `vigil replay --format vigil`).
    #[arg(long, value_name = "FILE")]
    pub emit_events: Option<PathBuf>,
    /// Do not start the `file-integrity` source.
    #[arg(long)]
    pub no_file_integrity: bool,
    /// Directory prepended to every built-in file-integrity path (e.g. the host's root mounted into Vigil's container; a temporary tree in tests).
    #[arg(long, value_name = "DIR")]
    pub fim_root: Option<PathBuf>,
    /// Extra path for the `file-integrity` source (repeatable): `/a/file`, `/a/dir/` (its direct children) or `/a/prefix*`.
    #[arg(long = "fim-path", value_name = "PATH")]
    pub fim_path: Vec<String>,
    /// Seconds between two full rehashes of the watched paths (default 600).
    #[arg(long, value_name = "N")]
    pub fim_rehash_secs: Option<u64>,
    /// Start the `k8s-audit-webhook` source on this address (e.g. 127.0.0.1:8444): the API server's audit webhook backend. Off when absent.
    #[arg(long, value_name = "ADDR")]
    pub audit_webhook_listen: Option<String>,
    /// File holding the bearer token the API server must send (`Authorization: Bearer <token>`); required, on loopback too (`allow_unauthenticated = true` in the config file waives it).
    #[arg(long, value_name = "FILE")]
    pub audit_webhook_token_file: Option<PathBuf>,
    /// Largest accepted audit webhook request body, in bytes (default 16 MiB); larger ones get 413.
    #[arg(long, value_name = "N")]
    pub audit_webhook_max_body_bytes: Option<u64>,
    /// PEM certificate chain of the audit webhook: serve HTTPS (with `--audit-webhook-tls-key`).
    #[arg(long, value_name = "FILE")]
    pub audit_webhook_tls_cert: Option<PathBuf>,
    /// PEM private key of `--audit-webhook-tls-cert`.
    #[arg(long, value_name = "FILE")]
    pub audit_webhook_tls_key: Option<PathBuf>,
    /// Start the `k8s-audit-log` source: follow this JSON-lines audit log (the API server's `--audit-log-path`), across rotation. Off when absent.
    #[arg(long, value_name = "PATH")]
    pub audit_log: Option<PathBuf>,
    /// Read the audit log from its beginning rather than only the lines written after startup.
    #[arg(long)]
    pub audit_log_from_beginning: bool,
    /// Start the `k8s-watch` source (Pod and Event watchers) even when no kubeconfig or in-cluster service account is found. Default: on when one is found.
    #[arg(long, conflicts_with = "no_k8s_watch")]
    pub k8s_watch: bool,
    /// Do not start the `k8s-watch` source.
    #[arg(long)]
    pub no_k8s_watch: bool,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, value_name = "NS")]
    pub k8s_namespace: Option<String>,
    /// Response to findings (`response.mode`): `off`, `dry-run` (log and record the quarantine that would be taken) or `enforce` (quarantine).
    #[arg(long, value_enum, value_name = "MODE")]
    pub response: Option<vigil_response::Mode>,
    /// A response rule (`[[response.rules]]`, appended): a rule id, exact or glob (e.g. `container-escape/*`), whose findings trigger the response (repeatable; first match wins).
    #[arg(long = "response-rule", value_name = "GLOB")]
    pub response_rule: Vec<String>,
    /// Findings below this severity trigger no response (`response.min_severity`, default high).
    #[arg(long, value_name = "SEVERITY", value_parser = ["info", "low", "medium", "high", "critical"])]
    pub response_min_severity: Option<String>,
    /// Containers never quarantined, globs over names or ids (`response.docker.exempt`, appended). Vigil's own container always is.
    #[arg(long = "response-exempt", value_name = "GLOB")]
    pub response_exempt: Vec<String>,
    /// Only these containers are quarantined, globs over names or ids (`response.docker.include`, appended; default all).
    #[arg(long = "response-include", value_name = "GLOB")]
    pub response_include: Vec<String>,
}

/// This machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
