//! Kubernetes audit events (`audit.k8s.io/v1` `Event` and `EventList`) into
//! Vigil events.
//!
//! Parsing dominates replay, so the audit event is deserialised into
//! borrowing structs that name only the fields a detector reads; request
//! and response bodies stay unparsed (`RawValue`) unless they hold a pod
//! spec.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::borrowed::Str;
use super::pod::{Object, pod_of, spec_error};
use super::{NormalizeError, Origin};
use vigil_core::model::{Event, EventBody, KubernetesEvent};
use vigil_core::time::parse_rfc3339;

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct AuditEvent<'a> {
    /// `Event` or `EventList`.
    #[serde(borrow)]
    kind: Option<Str<'a>>,
    /// The events of an `EventList`.
    #[serde(borrow)]
    items: Option<Vec<&'a RawValue>>,
    #[serde(borrow, rename = "auditID")]
    audit_id: Str<'a>,
    #[serde(borrow)]
    stage: Str<'a>,
    #[serde(borrow, rename = "requestURI")]
    request_uri: Str<'a>,
    #[serde(borrow)]
    verb: Str<'a>,
    #[serde(borrow)]
    user: UserInfo<'a>,
    #[serde(borrow)]
    impersonated_user: Option<UserInfo<'a>>,
    #[serde(borrow, rename = "sourceIPs")]
    source_ips: Vec<Str<'a>>,
    #[serde(borrow)]
    user_agent: Str<'a>,
    #[serde(borrow)]
    object_ref: Option<ObjectRef<'a>>,
    response_status: Option<Status>,
    #[serde(borrow)]
    request_object: Option<&'a RawValue>,
    #[serde(borrow)]
    response_object: Option<&'a RawValue>,
    #[serde(borrow)]
    stage_timestamp: Option<Str<'a>>,
    #[serde(borrow)]
    request_received_timestamp: Option<Str<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UserInfo<'a> {
    #[serde(borrow)]
    username: Str<'a>,
    #[serde(borrow)]
    groups: Vec<Str<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ObjectRef<'a> {
    #[serde(borrow)]
    resource: Str<'a>,
    #[serde(borrow)]
    subresource: Str<'a>,
    #[serde(borrow)]
    namespace: Str<'a>,
    #[serde(borrow)]
    name: Str<'a>,
    #[serde(borrow)]
    api_group: Str<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Status {
    code: Option<u16>,
}

/// Resources whose objects hold a pod spec or a pod template.
const POD_RESOURCES: [&str; 8] = [
    "pods",
    "deployments",
    "replicasets",
    "daemonsets",
    "statefulsets",
    "jobs",
    "cronjobs",
    "replicationcontrollers",
];

/// Normalises one JSON document (an `Event` or an `EventList`), appending
/// to `out`; returns how many events it added.
pub fn normalise(
    doc: &str,
    origin: &Origin<'_>,
    out: &mut Vec<Event>,
) -> Result<usize, NormalizeError> {
    let mut parsed: AuditEvent<'_> = super::parse(doc)?;
    match parsed.kind.as_deref() {
        Some("Event") => {
            out.push(event(parsed, origin)?);
            Ok(1)
        }
        Some("EventList") => {
            let items = parsed.items.take().unwrap_or_default();
            for item in &items {
                let e: AuditEvent<'_> = super::parse(item.get())?;
                if e.kind.as_deref().is_some_and(|k| k != "Event") {
                    return Err(NormalizeError::Invalid(format!(
                        "EventList item of kind {:?}",
                        e.kind.unwrap_or_default()
                    )));
                }
                out.push(event(e, origin)?);
            }
            Ok(items.len())
        }
        Some(other) => Err(NormalizeError::Invalid(format!(
            "not a Kubernetes audit event: kind is {other:?}, expected \"Event\" or \"EventList\""
        ))),
        None => Err(NormalizeError::Invalid(
            "not a Kubernetes audit event: no \"kind\"".into(),
        )),
    }
}

fn event(e: AuditEvent<'_>, origin: &Origin<'_>) -> Result<Event, NormalizeError> {
    if e.audit_id.is_empty() && e.verb.is_empty() {
        return Err(NormalizeError::Invalid(
            "audit event has neither auditID nor verb".into(),
        ));
    }
    let time = e
        .stage_timestamp
        .as_deref()
        .or(e.request_received_timestamp.as_deref())
        .map_or(Ok(0), |t| {
            parse_rfc3339(t).ok_or_else(|| NormalizeError::Invalid(format!("bad timestamp {t:?}")))
        })?;
    let oref = e.object_ref.unwrap_or_default();
    let mut name = oref.name.into_owned();
    let mut namespace = oref.namespace.into_owned();
    let mut pod = None;
    let mut owner = None;
    // The response is what the API server persisted (with the generated
    // name); the request is what the client asked for.
    // Only workload resources carry a pod spec; every other body stays
    // unparsed (the cheapest bytes are the ones never decoded).
    let bodies = if POD_RESOURCES.contains(&&*oref.resource) {
        [e.response_object, e.request_object]
    } else {
        [None, None]
    };
    // The pod's uid, from the response only: the API server wrote it; a
    // request body holds whatever the client sent.
    let mut pod_uid = None;
    for (i, body) in bodies.into_iter().enumerate() {
        let Some(body) = body else { continue };
        let obj = match serde_json::from_str::<Object<'_>>(body.get()) {
            Ok(obj) => obj,
            // A pod whose spec is malformed is a bad record; any other body
            // that is not an object is none of our business.
            Err(_) => match spec_error(body.get()) {
                Some(e) => return Err(NormalizeError::Json(e)),
                None => continue,
            },
        };
        if let Some((p, o)) = pod_of(&obj).map_err(NormalizeError::Json)? {
            if name.is_empty() {
                name = obj
                    .metadata
                    .name
                    .as_deref()
                    .or(obj.metadata.generate_name.as_deref())
                    .unwrap_or_default()
                    .to_owned();
            }
            if namespace.is_empty() {
                namespace = obj
                    .metadata
                    .namespace
                    .as_deref()
                    .unwrap_or_default()
                    .to_owned();
            }
            if i == 0
                && &*obj.kind == "Pod"
                && oref.resource == "pods"
                && oref.subresource.is_empty()
                && obj.metadata.name.as_deref() == Some(name.as_str())
                && let Some(uid) = obj.metadata.uid.as_deref()
                && !uid.is_empty()
            {
                pod_uid = Some(uid.to_owned());
            }
            pod = Some(p);
            owner = o;
            break;
        }
    }
    let (user, groups) = match &e.impersonated_user {
        // The impersonated identity is who the request acts as.
        Some(imp) if !imp.username.is_empty() => (
            String::from(&*imp.username),
            imp.groups.iter().map(|g| String::from(&**g)).collect(),
        ),
        _ => (
            String::from(&*e.user.username),
            e.user.groups.iter().map(|g| String::from(&**g)).collect(),
        ),
    };
    // Pushed, not `format!`ed: this runs for every audit event.
    let mut id = String::with_capacity(11 + e.audit_id.len() + e.stage.len());
    id.push_str("k8s-audit:");
    id.push_str(&e.audit_id);
    id.push(':');
    id.push_str(&e.stage);
    if let Some(uid) = &pod_uid {
        // The WIT event has no field for it (its `audit-id` is the
        // request's): the subject windows find it by event id.
        vigil_core::subjects::audit_pod_uids::note(&id, uid);
    }
    Ok(Event {
        id,
        time,
        node: origin.node.to_owned(),
        source: "k8s-audit".into(),
        body: EventBody::Kubernetes(KubernetesEvent {
            verb: e.verb.into_owned(),
            resource: oref.resource.into_owned(),
            subresource: oref.subresource.into_owned(),
            api_group: oref.api_group.into_owned(),
            namespace,
            name,
            user,
            groups,
            stage: e.stage.into_owned(),
            response_code: e.response_status.and_then(|s| s.code),
            request_uri: e.request_uri.into_owned(),
            source_ips: e.source_ips.into_iter().map(Str::into_owned).collect(),
            user_agent: e.user_agent.into_owned(),
            audit_id: e.audit_id.into_owned(),
            pod,
            owner,
        }),
    })
}
