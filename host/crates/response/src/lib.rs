//! Response: quarantine of the containers and pods findings are about.
//!
//! The [`Responder`] runs on a thread of its own (with its own async
//! runtime, so a slow Docker daemon or API server never holds up detection
//! or delivery) and receives every finding after it was written. The
//! [`policy`] decides whether a finding triggers a response and in which
//! mode; each target the finding names (`container` entities → Docker,
//! `pod` entities → Kubernetes) is claimed in the quarantine database
//! ([`store`]) — at most one record per target and mode, so a second
//! finding does nothing new — and the actions are taken (`enforce`) or only
//! recorded as planned (`dry-run`). Every action is a database row, a log
//! line and a `vigil_response_*` counter.

pub mod docker;
pub mod evidence;
mod internal_events;
pub mod kubernetes;
pub mod own;
pub mod policy;
pub mod store;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::thread::JoinHandle;

use tokio::sync::mpsc;

use evidence::Bundle;
use internal_events::{
    AlreadyHandled, QuarantineEnded, QuarantineStarted, ReleasedBefore, ResponseAction,
    ResponseNotPermitted, ResponseQueueFull, ResponseStoreFailed, TargetExempt, TargetUnverified,
};
pub use policy::{Mode, Policy, ResponseConfig};
use store::{Claim, NewQuarantine, Outcome, Quarantine, State, Store, TargetKind};
use vigil_core::finding_record::FindingRecord;
use vigil_core::glob::matches as glob;
use vigil_core::metrics::{Registry, ResponseCounters};
use vigil_core::model::EntityKind;
use vigil_core::time::wall_now;
use vigil_core::timeline::{EntityQuery, Timeline};

/// Findings waiting for the responder; beyond this they are dropped (counted).
const QUEUE: usize = 1024;

/// The plugins whose findings may trigger a response, shared between the
/// host (which sets it at start and at each reload) and the responder.
/// Empty until set: no plugin may, so a missed call fails closed.
pub type PermittedPlugins = Arc<RwLock<Arc<BTreeSet<String>>>>;

/// Records the actions of one pass over a quarantine (database row, log
/// line, counter) and keeps the detail release needs up to date.
pub struct Recorder<'a> {
    store: &'a Store,
    metrics: &'a ResponseCounters,
    /// The record (its `detail` follows [`Recorder::save_detail`]).
    pub q: Quarantine,
    /// Actions that failed in this pass.
    pub failed: usize,
    /// Actions that could not be taken yet (retried by the next finding).
    pub pending: usize,
    /// The first pass over this quarantine (resumed passes do not repeat
    /// the notes of the first).
    pub first_run: bool,
}

impl<'a> Recorder<'a> {
    fn new(
        store: &'a Store,
        metrics: &'a ResponseCounters,
        q: Quarantine,
        first_run: bool,
    ) -> Self {
        Self {
            store,
            metrics,
            q,
            failed: 0,
            pending: 0,
            first_run,
        }
    }

    /// Records an action.
    pub fn act(&mut self, action: &str, outcome: Outcome, detail: &str) {
        if outcome == Outcome::Failed {
            self.failed += 1;
        }
        ResponseAction {
            q: &self.q,
            action,
            outcome,
            detail,
        }
        .emit(self.metrics);
        match self.store.action(&self.q.id, action, outcome, detail) {
            Ok(a) => self.q.actions.push(a),
            Err(e) => ResponseStoreFailed {
                error: &e,
                rule: &self.q.rule,
            }
            .emit(self.metrics),
        }
    }

    /// Records the outcome of writing an evidence file.
    pub fn evidence(&mut self, written: std::io::Result<()>, what: &str) {
        match written {
            Ok(()) => self.act("evidence", Outcome::Ok, what),
            Err(e) => self.act("evidence", Outcome::Failed, &format!("{what}: {e}")),
        }
    }

    /// Saves what release needs, right after each action that changed the
    /// target (a crash between two actions leaves a releasable record).
    pub fn save_detail(&mut self, detail: &impl serde::Serialize) {
        let Ok(value) = serde_json::to_value(detail) else {
            return;
        };
        self.q.detail = value;
        if let Err(e) = self.store.update(&self.q.id, self.q.state, &self.q.detail) {
            ResponseStoreFailed {
                error: &e,
                rule: &self.q.rule,
            }
            .emit(self.metrics);
        }
    }

    /// Sets the final state of this pass.
    fn finish(&mut self, state: State) {
        self.q.state = state;
        if let Err(e) = self.store.update(&self.q.id, state, &self.q.detail) {
            ResponseStoreFailed {
                error: &e,
                rule: &self.q.rule,
            }
            .emit(self.metrics);
        }
        if let Ok(Some(fresh)) = self.store.get(&self.q.id) {
            self.q = fresh;
        }
    }
}

/// A target a finding names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: TargetKind,
    /// Full container id, or pod `namespace/name`.
    pub id: String,
    pub name: String,
    /// A pod's uid, when the events the plugin was shown carried it: the pod
    /// fetched by `namespace/name` must have it.
    pub uid: Option<String>,
}

/// A container or pod entity of a finding that the responder does not act
/// on because the host could not verify it, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified {
    pub kind: TargetKind,
    /// As the finding gave it.
    pub id: String,
    pub reason: &'static str,
}

/// The targets of a finding that the configuration lets the responder act
/// on, and the container and pod entities it does not act on because they
/// are not verified (see `vigil_core::subjects`): only an entity the host
/// matched to an event shown to the plugin (`"verified": true`) with a full
/// 64-hex container id, or a pod `namespace/name`, is a target.
pub fn targets(f: &FindingRecord, cfg: &ResponseConfig) -> (Vec<Target>, Vec<Unverified>) {
    let mut out = Vec::new();
    let mut unverified = Vec::new();
    for e in &f.entities {
        let kind = match e.kind {
            EntityKind::Container if cfg.docker.enabled => TargetKind::Docker,
            EntityKind::Pod if cfg.kubernetes.enabled => TargetKind::Kubernetes,
            _ => continue,
        };
        let refuse = |reason| Unverified {
            kind,
            id: e.id.clone(),
            reason,
        };
        if !e.is_verified() {
            unverified.push(refuse(
                "not a container or pod of the events this plugin was shown recently",
            ));
            continue;
        }
        match kind {
            TargetKind::Docker if !docker::is_full_id(&e.id) => {
                unverified.push(refuse("verified, but not a full 64-hex container id"));
            }
            TargetKind::Docker => {
                let name = e.name.trim_start_matches('/');
                // A container Vigil renamed goes by its own name.
                let name = name.split(docker::NAME_MARKER).next().unwrap_or(name);
                out.push(Target {
                    kind,
                    id: e.id.clone(),
                    name: name.to_owned(),
                    uid: None,
                });
            }
            TargetKind::Kubernetes => match e.id.split_once('/') {
                Some((ns, name)) if !ns.is_empty() && !name.is_empty() => out.push(Target {
                    kind,
                    id: e.id.clone(),
                    name: name.to_owned(),
                    uid: e.uid.clone(),
                }),
                _ => unverified.push(refuse("not a pod namespace/name")),
            },
        }
    }
    out.dedup();
    (out, unverified)
}

/// The decision engine and the actions, driven by the responder thread.
pub struct Engine {
    cfg: ResponseConfig,
    policy: Policy,
    data_dir: PathBuf,
    /// Opened at the first finding that calls for a response (nothing is
    /// created in the data directory while the response is off).
    store: Option<Store>,
    own: own::Own,
    node: String,
    registry: Arc<Registry>,
    docker: docker::DockerActions,
    kubernetes: kubernetes::KubernetesActions,
    /// Quarantine ids to resume (their container started).
    resume: mpsc::UnboundedSender<Control>,
    /// The plugins allowed to trigger a response.
    permitted: PermittedPlugins,
    /// The host's timeline: the target's goes into the evidence bundle.
    timeline: Option<Arc<Timeline>>,
}

/// What the responder thread is told besides findings.
pub enum Control {
    /// Resume this quarantine (its container started).
    Resume(String),
    /// New settings (config reload).
    Reconfigure(Box<ResponseConfig>),
}

impl Engine {
    /// An engine keeping its records under `data_dir`.
    pub fn new(
        cfg: ResponseConfig,
        data_dir: &Path,
        node: &str,
        own: own::Own,
        registry: Arc<Registry>,
        resume: mpsc::UnboundedSender<Control>,
    ) -> Self {
        Self {
            resume,
            policy: Policy::new(&cfg),
            data_dir: data_dir.to_owned(),
            store: None,
            own,
            node: node.to_owned(),
            registry,
            docker: docker::DockerActions::new(cfg.docker.clone()),
            kubernetes: kubernetes::KubernetesActions::default(),
            cfg,
            permitted: PermittedPlugins::default(),
            timeline: None,
        }
    }

    /// Applies reloaded settings.
    pub fn reconfigure(&mut self, cfg: ResponseConfig) {
        if cfg == self.cfg {
            return;
        }
        self.policy = Policy::new(&cfg);
        if cfg.docker != self.cfg.docker {
            self.docker = docker::DockerActions::new(cfg.docker.clone());
        }
        let rules: Vec<&str> = cfg.rules.iter().map(|r| r.rule.as_str()).collect();
        tracing::info!(mode = cfg.mode.as_str(), rules = ?rules, "response: settings reloaded");
        self.cfg = cfg;
    }

    /// Opens the database if needed; false (logged, counted) if it cannot be.
    fn open_store(&mut self) -> bool {
        if self.store.is_some() {
            return true;
        }
        match Store::open(&self.data_dir) {
            Ok(s) => {
                self.store = Some(s);
                true
            }
            Err(e) => {
                ResponseStoreFailed {
                    error: &e,
                    rule: "",
                }
                .emit(&self.registry.response);
                false
            }
        }
    }

    /// Handles one finding.
    pub async fn handle(&mut self, f: &FindingRecord) {
        let decision = match self.policy.decide(&f.rule_id, f.severity) {
            Ok(d) => d,
            Err(why) => {
                tracing::trace!(rule = %f.rule_id, reason = ?why, "response: no action for this finding");
                return;
            }
        };
        let permitted = self
            .permitted
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&f.plugin);
        if !permitted {
            ResponseNotPermitted {
                plugin: &f.plugin,
                rule: &f.rule_id,
                finding: &f.id,
            }
            .emit(&self.registry.response);
            return;
        }
        vigil_core::metrics::PluginMetrics::add(&self.registry.response.decisions, 1);
        let (targets, unverified) = targets(f, &self.cfg);
        for u in &unverified {
            TargetUnverified {
                kind: u.kind.as_str(),
                target: &u.id,
                rule: &f.rule_id,
                reason: u.reason,
            }
            .emit(&self.registry.response);
        }
        for t in targets {
            self.respond(f, decision.mode, t).await;
        }
    }

    /// The target as the Engine knows it (full id confirmed, its own name),
    /// or `None` (logged, counted) when the Engine does not confirm it.
    async fn identify(&mut self, f: &FindingRecord, t: Target) -> Option<(Target, u32)> {
        if t.kind != TargetKind::Docker {
            return Some((t, 0));
        }
        match self.docker.identify(&t.id).await {
            Ok(ident) => Some((
                Target {
                    kind: t.kind,
                    id: ident.id,
                    // A container Vigil renamed goes by its own name.
                    name: ident
                        .name
                        .split(docker::NAME_MARKER)
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                    uid: None,
                },
                ident.pid,
            )),
            Err(reason) => {
                TargetUnverified {
                    kind: t.kind.as_str(),
                    target: &t.id,
                    rule: &f.rule_id,
                    reason: &format!("the Docker Engine does not confirm it: {reason}"),
                }
                .emit(&self.registry.response);
                None
            }
        }
    }

    /// Why a target is never quarantined, if it is not. For a container,
    /// `t` and `pid` are what the Engine returned for its full id.
    fn exempt(&self, t: &Target, pid: u32) -> Option<(String, bool)> {
        match t.kind {
            TargetKind::Docker => {
                if self.own.is_own_container(&t.id, pid) {
                    return Some(("Vigil's own container".into(), true));
                }
                if let Some(pod) = own::kubelet_pod(&t.name)
                    && self.own.is_own_pod(&pod)
                {
                    return Some(("a container of Vigil's own pod".into(), true));
                }
                let d = &self.cfg.docker;
                if let Some(p) = d.exempt.iter().find(|p| glob(p, &t.name) || glob(p, &t.id)) {
                    return Some((format!("matches response.docker.exempt {p:?}"), false));
                }
                if !d.include.is_empty()
                    && !d.include.iter().any(|p| glob(p, &t.name) || glob(p, &t.id))
                {
                    return Some(("matches no response.docker.include".into(), false));
                }
                None
            }
            TargetKind::Kubernetes => {
                if self.own.is_own_pod(&t.id) {
                    return Some(("Vigil's own pod".into(), true));
                }
                let ns = t.id.split_once('/').map_or("", |(ns, _)| ns);
                self.cfg
                    .kubernetes
                    .exempt_namespaces
                    .iter()
                    .find(|n| *n == ns)
                    .map(|n| {
                        (
                            format!("namespace {n} is in response.kubernetes.exempt_namespaces"),
                            false,
                        )
                    })
            }
        }
    }

    async fn respond(&mut self, f: &FindingRecord, mode: Mode, t: Target) {
        let registry = self.registry.clone();
        let m = &registry.response;
        let Some((t, pid)) = self.identify(f, t).await else {
            return;
        };
        let t = &t;
        if let Some((reason, own)) = self.exempt(t, pid) {
            TargetExempt {
                kind: t.kind.as_str(),
                target: &t.id,
                rule: &f.rule_id,
                reason: &reason,
                own,
            }
            .emit(m);
            return;
        }
        let proto = NewQuarantine {
            kind: t.kind,
            target: t.id.clone(),
            target_name: t.name.clone(),
            node: self.node.clone(),
            rule: f.rule_id.clone(),
            severity: f.severity,
            finding_id: f.id.clone(),
            mode,
        };
        if !self.open_store() {
            return;
        }
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let (q, first) = match store.claim(&proto) {
            Ok(Claim::New(q)) => {
                QuarantineStarted { q: &q }.emit(m);
                (q, true)
            }
            Ok(Claim::Existing(q)) => {
                let _ = store.add_finding(&q.id, &f.id, &f.rule_id);
                if mode == Mode::Enforce && !q.evidence_dir.is_empty() {
                    let _ = Bundle::open(Path::new(&q.evidence_dir)).and_then(|b| b.add_finding(f));
                }
                let resume = mode == Mode::Enforce
                    && matches!(q.state, State::Isolating | State::Partial | State::Failed);
                if !resume {
                    AlreadyHandled {
                        q: &q,
                        finding: &f.id,
                        rule: &f.rule_id,
                    }
                    .emit(m);
                    return;
                }
                tracing::info!(quarantine = %q.id, state = q.state.as_str(), "response: resuming an unfinished quarantine");
                (q, false)
            }
            Ok(Claim::Released(q)) => {
                ReleasedBefore {
                    q: &q,
                    rule: &f.rule_id,
                }
                .emit(m);
                return;
            }
            Err(e) => {
                ResponseStoreFailed {
                    error: &e,
                    rule: &f.rule_id,
                }
                .emit(m);
                return;
            }
        };
        self.pass(q, first, Some(f), t.uid.as_deref()).await;
    }

    /// One pass of actions over a record (new, resumed by a finding, or
    /// resumed because its container started).
    async fn pass(
        &mut self,
        q: Quarantine,
        first: bool,
        f: Option<&FindingRecord>,
        pod_uid: Option<&str>,
    ) {
        let m = &self.registry.response;
        let dry = q.mode != Mode::Enforce;
        let bundle = if dry {
            None
        } else {
            match Bundle::open(Path::new(&q.evidence_dir)) {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::error!(quarantine = %q.id, dir = %q.evidence_dir, error = %e, "response: cannot create the evidence directory; quarantining without evidence");
                    None
                }
            }
        };
        let kind = q.kind;
        let Some(store) = self.store.as_ref() else {
            return;
        };
        let mut rec = Recorder::new(store, m, q, first);
        if let (Some(b), Some(f)) = (&bundle, f) {
            rec.evidence(b.add_finding(f).map(|_| ()), "findings.jsonl");
        }
        if let (Some(b), Some(t)) = (&bundle, &self.timeline) {
            // Rewritten at each pass: the latest history of the target,
            // the finding that triggered this pass included.
            let view = t.query(&timeline_query(kind, &rec.q.target), wall_now());
            rec.evidence(b.write_json("timeline.json", &view), "timeline.json");
        }
        let state = match kind {
            TargetKind::Docker => self.docker.quarantine(&mut rec, bundle.as_ref(), dry).await,
            TargetKind::Kubernetes => {
                self.kubernetes
                    .quarantine(&mut rec, bundle.as_ref(), dry, pod_uid)
                    .await
            }
        };
        let waiting_for_start =
            kind == TargetKind::Docker && state == State::Partial && rec.pending > 0;
        rec.finish(state);
        if let Some(b) = &bundle {
            let _ = b.write_manifest();
            let _ = b.write_record(&rec.q);
        }
        QuarantineEnded { q: &rec.q, state }.emit(m);
        if waiting_for_start {
            self.watch_start(&rec.q);
        }
    }

    /// A container quarantined before it ran (from its `create`) is paused
    /// when it starts: a task follows the daemon's events for that container
    /// (from a little before now, so a start in between is not missed) and
    /// asks for a new pass on `start`.
    fn watch_start(&self, q: &Quarantine) {
        let Some(docker) = self.docker.cached_client() else {
            return;
        };
        let (id, container) = (q.id.clone(), q.target.clone());
        let tx = self.resume.clone();
        let since = (vigil_core::time::wall_now() / 1_000_000_000).saturating_sub(5);
        tracing::info!(quarantine = %id, container = %container, "response: waiting for the container to start, to pause it");
        tokio::spawn(async move {
            use futures_util::StreamExt;
            let filters = std::collections::HashMap::from([
                ("type".to_owned(), vec!["container".to_owned()]),
                ("container".to_owned(), vec![container.clone()]),
                ("event".to_owned(), vec!["start".to_owned()]),
            ]);
            let mut events = docker.events(Some(bollard::query_parameters::EventsOptions {
                since: Some(since.to_string()),
                until: None,
                filters: Some(filters),
            }));
            match events.next().await {
                Some(Ok(_)) => {
                    let _ = tx.send(Control::Resume(id));
                }
                Some(Err(e)) => {
                    tracing::warn!(quarantine = %id, error = %vigil_core::error::chain(&e), "response: cannot follow the container's start; the next finding about it resumes the quarantine");
                }
                None => {}
            }
        });
    }

    /// Resumes an unfinished quarantine (its container started, or Vigil restarted).
    pub async fn resume(&mut self, id: &str) {
        if !self.open_store() {
            return;
        }
        let Some(store) = self.store.as_ref() else {
            return;
        };
        let q = match store.get(id) {
            Ok(Some(q)) => q,
            Ok(None) => return,
            Err(e) => {
                ResponseStoreFailed {
                    error: &e,
                    rule: "",
                }
                .emit(&self.registry.response);
                return;
            }
        };
        if q.mode != Mode::Enforce || !matches!(q.state, State::Isolating | State::Partial) {
            return;
        }
        tracing::info!(quarantine = %q.id, state = q.state.as_str(), "response: resuming an unfinished quarantine");
        self.pass(q, false, None, None).await;
    }

    /// Unfinished enforced quarantines (of an earlier run): resumed at start.
    pub fn unfinished(&mut self) -> Vec<String> {
        if !Store::dir_of(&self.data_dir).join(store::DB_FILE).is_file() || !self.open_store() {
            return Vec::new();
        }
        let Some(store) = self.store.as_ref() else {
            return Vec::new();
        };
        store
            .list()
            .unwrap_or_default()
            .into_iter()
            .filter(|q| {
                q.mode == Mode::Enforce && matches!(q.state, State::Isolating | State::Partial)
            })
            .map(|q| q.id)
            .collect()
    }
}

/// Releases a quarantine (`vigil quarantine release`): undoes its actions
/// and marks it released. Returns the record as it ends up, and how many
/// of its actions came before this release.
pub async fn release(
    data_dir: &Path,
    id: &str,
    docker_cfg: policy::DockerResponseConfig,
    registry: &Registry,
) -> anyhow::Result<(Quarantine, usize)> {
    let store = Store::open(data_dir)?;
    let Some(q) = store.get(id)? else {
        anyhow::bail!(
            "no quarantine {id} in {}",
            Store::dir_of(data_dir).display()
        );
    };
    if q.state == State::Released {
        anyhow::bail!("quarantine {id} is already released");
    }
    let before = q.actions.len();
    let mut rec = Recorder::new(&store, &registry.response, q, false);
    let state = if rec.q.mode != Mode::Enforce {
        rec.act(
            "release",
            Outcome::Ok,
            "dry run: nothing was done, nothing to undo",
        );
        State::Released
    } else {
        match rec.q.kind {
            TargetKind::Docker => {
                docker::DockerActions::new(docker_cfg)
                    .release(&mut rec)
                    .await
            }
            TargetKind::Kubernetes => {
                kubernetes::KubernetesActions::default()
                    .release(&mut rec)
                    .await
            }
        }
    };
    rec.finish(state);
    if !rec.q.evidence_dir.is_empty()
        && let Ok(b) = Bundle::open(Path::new(&rec.q.evidence_dir))
    {
        let _ = b.write_record(&rec.q);
    }
    tracing::warn!(quarantine = %rec.q.id, kind = rec.q.kind.as_str(), target = %rec.q.target, state = state.as_str(), "response: quarantine release {}", if state == State::Released { "done" } else { "INCOMPLETE" });
    Ok((rec.q, before))
}

/// The timeline query of a quarantine target: a container by its full id,
/// a pod by `namespace/name`.
fn timeline_query(kind: TargetKind, target: &str) -> EntityQuery {
    match (kind, target.split_once('/')) {
        (TargetKind::Kubernetes, Some((namespace, name))) => EntityQuery::Pod {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        },
        _ => EntityQuery::Container(target.to_owned()),
    }
}

/// The running responder: a thread with its own runtime. It always runs
/// (idle while the mode is `off`) so that a config reload can turn the
/// response on or off without touching the rest of the pipeline.
pub struct Responder {
    tx: mpsc::Sender<Arc<FindingRecord>>,
    control: mpsc::UnboundedSender<Control>,
    thread: Option<JoinHandle<()>>,
    registry: Arc<Registry>,
    permitted: PermittedPlugins,
}

/// Submits findings to the responder; cheap to clone.
#[derive(Clone)]
pub struct ResponderHandle {
    tx: mpsc::Sender<Arc<FindingRecord>>,
    registry: Arc<Registry>,
}

/// The quarantine responder as the delivery pipeline's response stage.
impl vigil_delivery::Responder for ResponderHandle {
    fn respond(&mut self, finding: &FindingRecord) {
        self.submit(finding);
    }
}

impl ResponderHandle {
    /// Hands a finding over without blocking; a full queue drops it (counted, logged).
    pub fn submit(&self, f: &FindingRecord) {
        if self.tx.try_send(Arc::new(f.clone())).is_err() {
            ResponseQueueFull { rule: &f.rule_id }.emit(&self.registry.response);
        }
    }
}

impl Responder {
    /// Starts the responder thread.
    pub fn start(
        cfg: ResponseConfig,
        data_dir: PathBuf,
        node: &str,
        registry: Arc<Registry>,
        timeline: Option<Arc<Timeline>>,
    ) -> anyhow::Result<Self> {
        let own = own::Own::current();
        if !own.containers.is_empty() {
            tracing::info!(containers = ?own.containers, "response: Vigil's own container(s), never quarantined");
        }
        log_mode(&cfg, &data_dir);
        let (control, mut control_rx) = mpsc::unbounded_channel::<Control>();
        let mut engine = Engine::new(cfg, &data_dir, node, own, registry.clone(), control.clone());
        engine.timeline = timeline;
        let permitted = engine.permitted.clone();
        let (tx, mut rx) = mpsc::channel::<Arc<FindingRecord>>(QUEUE);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("vigil-response".into())
            .spawn(move || {
                rt.block_on(async move {
                    for id in engine.unfinished() {
                        engine.resume(&id).await;
                    }
                    loop {
                        tokio::select! {
                            f = rx.recv() => match f {
                                Some(f) => engine.handle(&f).await,
                                None => break,
                            },
                            Some(c) = control_rx.recv() => match c {
                                Control::Resume(id) => engine.resume(&id).await,
                                Control::Reconfigure(cfg) => engine.reconfigure(*cfg),
                            },
                        }
                    }
                });
            })?;
        Ok(Self {
            tx,
            control,
            thread: Some(thread),
            registry,
            permitted,
        })
    }

    /// Sets the plugins whose findings may trigger a response (at start,
    /// before the first finding, and at each reload); the findings of any
    /// other plugin are never acted on (counted in
    /// `vigil_response_not_permitted_total`).
    pub fn permit_plugins(&self, plugins: impl IntoIterator<Item = String>) {
        let set: BTreeSet<String> = plugins.into_iter().collect();
        tracing::info!(plugins = ?set, "response: plugins allowed to trigger a response");
        *self
            .permitted
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
    }

    /// A handle to submit findings with.
    pub fn handle(&self) -> ResponderHandle {
        ResponderHandle {
            tx: self.tx.clone(),
            registry: self.registry.clone(),
        }
    }

    /// Applies reloaded settings (validated by the caller).
    pub fn reconfigure(&self, cfg: ResponseConfig) {
        let _ = self.control.send(Control::Reconfigure(Box::new(cfg)));
    }

    /// Waits for the queued findings to be handled (every handle must be dropped).
    pub fn shutdown(mut self) {
        drop(self.tx);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn log_mode(cfg: &ResponseConfig, data_dir: &Path) {
    if cfg.mode == Mode::Off {
        tracing::info!("response: off");
    } else {
        let rules: Vec<&str> = cfg.rules.iter().map(|r| r.rule.as_str()).collect();
        tracing::info!(mode = cfg.mode.as_str(), rules = ?rules, dir = %Store::dir_of(data_dir).display(), "response: on");
    }
}

#[cfg(test)]
mod tests;
