//! A plugin that reports every event it receives (one `info` finding per
//! event, naming it and saying whether its pod spec came along), with its
//! subscriptions taken from its settings: so the tests see exactly what the
//! host delivered, filter by filter. Settings (all optional; absent: no
//! filter for that kind):
//!
//! `{"container_actions": ["start"], "kubernetes": {"resources": ["pods"],
//! "subresources": [""], "verbs": ["create"], "stages": ["ResponseComplete"],
//! "pod_spec": "unused"}, "file_prefixes": ["/etc/"]}`
use serde::Deserialize;
use vigil_plugin_sdk::prelude::*;

const NAME: &str = "subscription-probe";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Settings {
    container_actions: Option<Vec<String>>,
    kubernetes: Option<Kubernetes>,
    file_prefixes: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Kubernetes {
    resources: Vec<String>,
    subresources: Vec<String>,
    verbs: Vec<String>,
    stages: Vec<String>,
    pod_spec: Option<String>,
}

#[derive(Default)]
struct Probe {
    set: Option<SubscriptionSet>,
}

fn action(name: &str) -> Option<ContainerAction> {
    Some(match name {
        "create" => ContainerAction::Create,
        "start" => ContainerAction::Start,
        "die" => ContainerAction::Die,
        "destroy" => ContainerAction::Destroy,
        "exec-start" => ContainerAction::ExecStart,
        _ => return None,
    })
}

impl Detector for Probe {
    fn describe() -> PluginInfo {
        PluginInfo::builder(NAME, "0.1.0")
            .description("test fixture: reports every event it receives")
            .subscribe(EventKind::Container)
            .subscribe(EventKind::Kubernetes)
            .subscribe(EventKind::File)
            .build()
    }

    fn configure(&mut self, settings: &str) -> Result<(), ConfigError> {
        let s: Settings = vigil_plugin_sdk::settings::parse(settings)?;
        let mut set = SubscriptionSet::everything();
        if let Some(names) = s.container_actions {
            let mut actions = Vec::new();
            for n in names {
                actions.push(action(&n).ok_or_else(|| {
                    ConfigError::new("container_actions", format!("unknown action {n}"))
                })?);
            }
            set = set.containers(actions);
        }
        if let Some(k) = s.kubernetes {
            let pod_spec = match k.pod_spec.as_deref() {
                None | Some("when-present") => PodSpecUse::WhenPresent,
                Some("unused") => PodSpecUse::Unused,
                Some("required") => PodSpecUse::Required,
                Some(other) => {
                    return Err(ConfigError::new(
                        "kubernetes.pod_spec",
                        format!("unknown {other}"),
                    ));
                }
            };
            set = set.kubernetes(
                KubernetesFilter::any()
                    .resources(k.resources)
                    .subresources(k.subresources)
                    .verbs(k.verbs)
                    .stages(k.stages)
                    .pod_spec(pod_spec),
            );
        }
        if let Some(prefixes) = s.file_prefixes {
            set = set.files_under(prefixes);
        }
        self.set = Some(set);
        Ok(())
    }

    fn subscriptions(&self) -> SubscriptionSet {
        self.set.clone().unwrap_or_default()
    }

    fn on_events(&mut self, batch: &[Event]) -> Vec<Finding> {
        batch
            .iter()
            .map(|e| {
                let pod = match &e.body {
                    EventBody::Kubernetes(k) if k.pod.is_some() => "some",
                    EventBody::Kubernetes(_) => "none",
                    _ => "-",
                };
                Finding::builder(format!("{NAME}/received"), Severity::Info)
                    .title("event received")
                    .evidence("pod", pod)
                    .event(e.id.clone())
                    .build()
            })
            .collect()
    }
}

export_detector!(Probe);
