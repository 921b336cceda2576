//! Kubernetes quarantine: label the pod `vigil.dev/quarantine=<id>` and
//! create a NetworkPolicy `vigil-quarantine-<id>` in its namespace that
//! selects that label and allows nothing (policy types Ingress and Egress,
//! no rules): a deny-all for that pod only. The pod keeps running (its
//! memory is evidence); the NetworkPolicy is enforced by the cluster's
//! network plugin, if it enforces NetworkPolicies at all, and does not
//! apply to host-network pods (recorded as such: the quarantine is then
//! `partial`).
//!
//! Idempotent: the label is a JSON merge patch (applying it twice changes
//! nothing), the policy is created or, if it exists (409), read back and
//! checked. Release removes the label (merge patch with `null`) and deletes
//! the policy; a pod or policy already gone counts as released.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde::{Deserialize, Serialize};

use super::Recorder;
use super::evidence::Bundle;
use super::store::{Outcome, State};

/// The label put on a quarantined pod; its value is the quarantine id.
pub const LABEL: &str = "vigil.dev/quarantine";

/// What release needs, kept in the record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PodDetail {
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub pod: String,
    /// Whether the label was put on by Vigil.
    #[serde(default)]
    pub labelled: bool,
    /// The NetworkPolicy's name, once created (or found).
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub host_network: bool,
    /// The uid of the pod this quarantine is about, pinned at its first pass
    /// (the verified uid of the finding, or the one the API server showed):
    /// a pod recreated under the same name is a different pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// The NetworkPolicy's name for a quarantine.
pub fn policy_name(id: &str) -> String {
    format!("vigil-quarantine-{id}")
}

/// The deny-all NetworkPolicy selecting the quarantine label.
pub fn deny_all(namespace: &str, id: &str) -> NetworkPolicy {
    let value = serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": policy_name(id),
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "vigil",
                LABEL: id,
            },
            "annotations": {
                "vigil.dev/reason": "quarantine: deny all ingress and egress of the pod labelled vigil.dev/quarantine",
            },
        },
        "spec": {
            "podSelector": {"matchLabels": {LABEL: id}},
            "policyTypes": ["Ingress", "Egress"],
        },
    });
    // A literal of the right shape: cannot fail.
    serde_json::from_value(value).unwrap_or_default()
}

/// The Kubernetes side of the responder: a lazily created client
/// (kubeconfig or in-cluster service account, like the `k8s-watch` source).
#[derive(Default)]
pub struct KubernetesActions {
    client: Option<Client>,
}

impl KubernetesActions {
    async fn client(&mut self) -> Result<Client, String> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let config = kube::Config::infer().await.map_err(|e| {
            format!("no Kubernetes credentials (kubeconfig or in-cluster service account): {e}")
        })?;
        let c = Client::try_from(config).map_err(|e| e.to_string())?;
        self.client = Some(c.clone());
        Ok(c)
    }

    /// Quarantines (or, with `dry`, plans the quarantine of) the record's
    /// pod. `verified_uid`: the pod's uid as the events behind the finding
    /// showed it; the pod the API server returns for `namespace/name` must
    /// have it (and, on a later pass, the uid pinned at the first), else
    /// nothing is done. Without one, the pod is looked up (its current uid
    /// recorded) and nothing is done either.
    pub async fn quarantine(
        &mut self,
        rec: &mut Recorder<'_>,
        bundle: Option<&Bundle>,
        dry: bool,
        verified_uid: Option<&str>,
    ) -> State {
        let mut detail: PodDetail =
            serde_json::from_value(rec.q.detail.clone()).unwrap_or_default();
        let Some((ns, name)) = rec.q.target.split_once('/') else {
            rec.act(
                "inspect",
                Outcome::Failed,
                "the pod is not named namespace/name",
            );
            return State::Failed;
        };
        let (ns, name) = (ns.to_owned(), name.to_owned());
        detail.namespace.clone_from(&ns);
        detail.pod.clone_from(&name);
        let client = match self.client().await {
            Ok(c) => c,
            Err(e) => {
                rec.act("connect", Outcome::Failed, &e);
                return if dry { State::DryRun } else { State::Failed };
            }
        };
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let pod = match pods.get(&name).await {
            Ok(p) => p,
            Err(e) => {
                let msg = if is_not_found(&e) {
                    format!("pod {ns}/{name} not found")
                } else {
                    e.to_string()
                };
                rec.act("inspect", Outcome::Failed, &msg);
                return if dry { State::DryRun } else { State::Failed };
            }
        };
        let actual = pod.metadata.uid.clone().unwrap_or_default();
        let expected = detail
            .uid
            .clone()
            .or_else(|| verified_uid.map(str::to_owned));
        let Some(expected) = expected else {
            // A name is not an identity: a pod deleted and created again
            // under it is another workload (issue 10: act only on a pod
            // checked by uid). Its uid now is logged for the operator.
            rec.act(
                "inspect",
                Outcome::Failed,
                &format!(
                    "pod {ns}/{name} (uid {actual:?} now): no uid was verified from the events behind the finding, and the responder does not act on a pod by name alone; not acted on"
                ),
            );
            return if dry { State::DryRun } else { State::Failed };
        };
        if expected != actual {
            rec.act(
                "inspect",
                Outcome::Failed,
                &format!("pod {ns}/{name} has uid {actual:?}, not the verified {expected:?}: a different pod; not acted on"),
            );
            return if dry { State::DryRun } else { State::Failed };
        }
        if !actual.is_empty() {
            detail.uid = Some(actual);
        }
        detail.host_network = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        if let Some(b) = bundle
            && !b.has("pod.json")
        {
            rec.evidence(
                b.write_json("pod.json", &pod),
                "pod.json (before any action)",
            );
        }
        let id = rec.q.id.clone();
        let current = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL))
            .cloned();

        // 1. Label.
        if current.as_deref() == Some(id.as_str()) {
            detail.labelled = true;
        } else if dry {
            rec.act(
                "label",
                Outcome::Planned,
                &format!("label pod {ns}/{name} with {LABEL}={id}"),
            );
        } else {
            let patch = serde_json::json!({"metadata": {"labels": {LABEL: id}}});
            match pods
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    detail.labelled = true;
                    rec.save_detail(&detail);
                    rec.act(
                        "label",
                        Outcome::Ok,
                        &format!("labelled pod {ns}/{name} with {LABEL}={id}"),
                    );
                }
                Err(e) => rec.act("label", Outcome::Failed, &e.to_string()),
            }
        }
        // 2. Deny-all NetworkPolicy.
        let policy = policy_name(&id);
        let policies: Api<NetworkPolicy> = Api::namespaced(client, &ns);
        if detail.policy.is_some() {
            // Created by an earlier pass.
        } else if dry {
            rec.act("network-policy", Outcome::Planned, &format!("create NetworkPolicy {ns}/{policy} denying all ingress and egress of pods labelled {LABEL}={id}"));
        } else {
            match policies.create(&PostParams::default(), &deny_all(&ns, &id)).await {
                Ok(_) => {
                    detail.policy = Some(policy.clone());
                    rec.save_detail(&detail);
                    rec.act("network-policy", Outcome::Ok, &format!("created NetworkPolicy {ns}/{policy} (deny all ingress and egress)"));
                }
                Err(e) if is_already_exists(&e) => match policies.get(&policy).await {
                    Ok(existing) if selects(&existing, &id) => {
                        detail.policy = Some(policy.clone());
                        rec.save_detail(&detail);
                        rec.act("network-policy", Outcome::Skipped, &format!("NetworkPolicy {ns}/{policy} already exists and selects the pod"));
                    }
                    Ok(_) => rec.act("network-policy", Outcome::Failed, &format!("NetworkPolicy {ns}/{policy} exists but does not select {LABEL}={id}: left alone")),
                    Err(e) => rec.act("network-policy", Outcome::Failed, &e.to_string()),
                },
                Err(e) => rec.act("network-policy", Outcome::Failed, &e.to_string()),
            }
        }
        if detail.host_network && rec.first_run {
            rec.pending += 1;
            rec.act("isolate", Outcome::Skipped, "the pod uses the host network: NetworkPolicies do not apply to it, so it is labelled but NOT network-isolated");
        }
        rec.save_detail(&detail);
        if dry {
            rec.act(
                "evidence",
                Outcome::Planned,
                "write the evidence bundle (pod, findings) to DATA_DIR/quarantine/<id>/",
            );
            return State::DryRun;
        }
        if rec.failed == 0 && rec.pending == 0 {
            State::Quarantined
        } else if !detail.labelled && detail.policy.is_none() {
            State::Failed
        } else {
            State::Partial
        }
    }

    /// Removes the label and deletes the policy.
    pub async fn release(&mut self, rec: &mut Recorder<'_>) -> State {
        let detail: PodDetail = serde_json::from_value(rec.q.detail.clone()).unwrap_or_default();
        let client = match self.client().await {
            Ok(c) => c,
            Err(e) => {
                rec.act("connect", Outcome::Failed, &e);
                return State::ReleaseFailed;
            }
        };
        let (ns, name) = (detail.namespace.clone(), detail.pod.clone());
        if detail.labelled {
            let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
            let patch = serde_json::json!({"metadata": {"labels": {LABEL: null}}});
            match pods
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => rec.act(
                    "unlabel",
                    Outcome::Ok,
                    &format!("removed {LABEL} from pod {ns}/{name}"),
                ),
                Err(e) if is_not_found(&e) => rec.act(
                    "unlabel",
                    Outcome::Skipped,
                    &format!("pod {ns}/{name} no longer exists"),
                ),
                Err(e) => rec.act("unlabel", Outcome::Failed, &e.to_string()),
            }
        }
        if let Some(policy) = &detail.policy {
            let policies: Api<NetworkPolicy> = Api::namespaced(client, &ns);
            match policies.delete(policy, &DeleteParams::default()).await {
                Ok(_) => rec.act(
                    "delete-network-policy",
                    Outcome::Ok,
                    &format!("deleted NetworkPolicy {ns}/{policy}"),
                ),
                Err(e) if is_not_found(&e) => rec.act(
                    "delete-network-policy",
                    Outcome::Skipped,
                    &format!("NetworkPolicy {ns}/{policy} already gone"),
                ),
                Err(e) => rec.act("delete-network-policy", Outcome::Failed, &e.to_string()),
            }
        }
        if rec.failed > 0 {
            State::ReleaseFailed
        } else {
            State::Released
        }
    }
}

fn selects(p: &NetworkPolicy, id: &str) -> bool {
    p.spec
        .as_ref()
        .and_then(|s| s.pod_selector.as_ref())
        .and_then(|s| s.match_labels.as_ref())
        .and_then(|l| l.get(LABEL))
        .is_some_and(|v| v == id)
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_not_found())
}

fn is_already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_already_exists() || s.code == 409)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_denies_everything_for_the_label_only() {
        let p = deny_all("shop", "q0123456789ab");
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["metadata"]["name"], "vigil-quarantine-q0123456789ab");
        assert_eq!(v["metadata"]["namespace"], "shop");
        assert_eq!(
            v["spec"]["podSelector"],
            serde_json::json!({"matchLabels": {"vigil.dev/quarantine": "q0123456789ab"}})
        );
        assert_eq!(
            v["spec"]["policyTypes"],
            serde_json::json!(["Ingress", "Egress"])
        );
        assert!(v["spec"].get("ingress").is_none() && v["spec"].get("egress").is_none());
        assert!(selects(&p, "q0123456789ab"));
        assert!(!selects(&p, "qother"));
    }
}
