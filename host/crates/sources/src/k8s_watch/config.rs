//! The watchers' settings: on, off, or on when this machine has a
//! kubeconfig or an in-cluster service account.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The in-cluster service account token `kube::Config::incluster` reads.
pub const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Whether the source runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// On when a kubeconfig or an in-cluster service account exists.
    #[default]
    Auto,
    /// `--k8s-watch`: on, even if no credentials are found (the client
    /// error is then logged).
    On,
    /// `--no-k8s-watch`.
    Off,
}

/// The `k8s-watch` source as an operator writes it (or as the flags ask for it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    /// `auto` (on when a kubeconfig or an in-cluster service account is
    /// found), `on` or `off`.
    pub mode: Mode,
    /// Watch only this namespace; all namespaces when absent.
    pub namespace: Option<String>,
}

/// A source ready to start.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    pub namespace: Option<String>,
    /// Where the credentials come from (for the startup log).
    pub credentials: String,
}

/// Where credentials were found (only files are looked at: no network).
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `$KUBECONFIG` (a path list).
    pub kubeconfig_var: Option<String>,
    /// `$HOME`.
    pub home: Option<PathBuf>,
    /// `$KUBERNETES_SERVICE_HOST` is set.
    pub service_host: bool,
    /// The service account token path.
    pub token: PathBuf,
}

impl Environment {
    /// This process's environment.
    pub fn current() -> Self {
        Self {
            kubeconfig_var: std::env::var("KUBECONFIG").ok().filter(|v| !v.is_empty()),
            home: std::env::var_os("HOME").map(PathBuf::from),
            service_host: std::env::var_os("KUBERNETES_SERVICE_HOST")
                .is_some_and(|v| !v.is_empty()),
            token: PathBuf::from(SERVICE_ACCOUNT_TOKEN),
        }
    }

    /// Which credentials `kube::Config::infer` would use, if any.
    pub fn credentials(&self) -> Option<String> {
        if let Some(var) = &self.kubeconfig_var
            && let Some(p) = std::env::split_paths(var).find(|p| p.is_file())
        {
            return Some(format!("kubeconfig {}", p.display()));
        }
        if let Some(home) = &self.home {
            let p = home.join(".kube").join("config");
            if p.is_file() {
                return Some(format!("kubeconfig {}", p.display()));
            }
        }
        if self.service_host && Path::new(&self.token).is_file() {
            return Some("in-cluster service account".to_owned());
        }
        None
    }
}

impl WatchConfig {
    /// The settings, or why the source stays off.
    pub fn settings(&self, env: &Environment) -> Result<WatchSettings, String> {
        let found = env.credentials();
        let credentials = match (self.mode, found) {
            (Mode::Off, _) => return Err("mode = off".to_owned()),
            (_, Some(c)) => c,
            (Mode::On, None) => "none found; kube will report why".to_owned(),
            (Mode::Auto, None) => {
                return Err("no kubeconfig or in-cluster service account".to_owned());
            }
        };
        let namespace = self.namespace.clone().filter(|n| !n.is_empty());
        if let Some(ns) = &namespace
            && !is_namespace_name(ns)
        {
            return Err(format!("namespace {ns:?} is not a namespace name"));
        }
        Ok(WatchSettings {
            namespace,
            credentials,
        })
    }
}

/// Whether `ns` can name a namespace (an RFC 1123 label: at most 63
/// characters of a-z, 0-9 and `-`).
pub fn is_namespace_name(ns: &str) -> bool {
    !ns.is_empty()
        && ns.len() <= 63
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl WatchSettings {
    /// `all namespaces` or `namespace X`.
    pub fn scope(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("namespace {ns}"),
            None => "all namespaces".to_owned(),
        }
    }
}
