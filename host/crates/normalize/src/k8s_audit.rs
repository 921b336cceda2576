//! Kubernetes audit events (`audit.k8s.io/v1` `Event` and `EventList`) into
//! Vigil events.
//!
//! Parsing dominates replay, so the audit event is deserialised into
//! borrowing structs that name only the fields a detector reads; request
//! and response bodies stay unparsed (`RawValue`) unless they hold a pod
//! spec. A response body that holds one is parsed in the same pass as the
//! event when `objectRef` precedes it, as the API server writes it (see
//! [`OnePass`]).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
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
    /// The response body, parsed in the first pass ([`OnePass`]); then
    /// `response_object` is `None`.
    #[serde(skip)]
    response_parsed: Option<Box<Object<'a>>>,
    #[serde(borrow)]
    stage_timestamp: Option<Str<'a>>,
    #[serde(borrow)]
    request_received_timestamp: Option<Str<'a>>,
}

/// An audit event's fields, as [`AuditEvent`] names them.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(field_identifier, rename_all = "camelCase")]
enum Field {
    Kind,
    Items,
    #[serde(rename = "auditID")]
    AuditId,
    Stage,
    #[serde(rename = "requestURI")]
    RequestUri,
    Verb,
    User,
    ImpersonatedUser,
    #[serde(rename = "sourceIPs")]
    SourceIps,
    UserAgent,
    ObjectRef,
    ResponseStatus,
    RequestObject,
    ResponseObject,
    StageTimestamp,
    RequestReceivedTimestamp,
    #[serde(other)]
    Other,
}

/// An [`AuditEvent`] read in one pass: when `objectRef` has already named
/// a pod resource, the response body is parsed as an [`Object`] where it
/// stands, rather than scanned as a `RawValue` and parsed again after (it
/// is the largest body, and the scan was a tenth of a replay's time).
///
/// It accepts only what the derived [`AuditEvent`] accepts, field by field
/// with the same types, duplicates refused; whatever it refuses (a
/// malformed line, and a response body that is no object or whose pod
/// spec is malformed, which [`event`] may skip or explain) is parsed again
/// the two-pass way, so errors and output do not depend on which pass read
/// the line.
struct OnePass<'a>(AuditEvent<'a>);

impl<'de> Deserialize<'de> for OnePass<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OnePass<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Kubernetes audit event")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut e = AuditEvent::default();
                let mut seen = 0u32;
                while let Some(field) = map.next_key::<Field>()? {
                    if field != Field::Other {
                        let bit = 1 << field as u32;
                        if seen & bit != 0 {
                            return Err(de::Error::custom("duplicate field"));
                        }
                        seen |= bit;
                    }
                    match field {
                        Field::Kind => e.kind = map.next_value()?,
                        Field::Items => e.items = map.next_value()?,
                        Field::AuditId => e.audit_id = map.next_value()?,
                        Field::Stage => e.stage = map.next_value()?,
                        Field::RequestUri => e.request_uri = map.next_value()?,
                        Field::Verb => e.verb = map.next_value()?,
                        Field::User => e.user = map.next_value()?,
                        Field::ImpersonatedUser => e.impersonated_user = map.next_value()?,
                        Field::SourceIps => e.source_ips = map.next_value()?,
                        Field::UserAgent => e.user_agent = map.next_value()?,
                        Field::ObjectRef => e.object_ref = map.next_value()?,
                        Field::ResponseStatus => e.response_status = map.next_value()?,
                        Field::RequestObject => e.request_object = map.next_value()?,
                        Field::ResponseObject
                            if e.object_ref
                                .as_ref()
                                .is_some_and(|o| holds_pod(&o.resource)) =>
                        {
                            e.response_parsed =
                                map.next_value::<Option<Object<'de>>>()?.map(Box::new);
                        }
                        Field::ResponseObject => e.response_object = map.next_value()?,
                        Field::StageTimestamp => e.stage_timestamp = map.next_value()?,
                        Field::RequestReceivedTimestamp => {
                            e.request_received_timestamp = map.next_value()?;
                        }
                        Field::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(OnePass(e))
            }
        }
        d.deserialize_map(V)
    }
}

/// One audit event (or event list): in one pass if it can be, else the
/// two-pass way, which also explains what is wrong.
fn parse(doc: &str) -> Result<AuditEvent<'_>, NormalizeError> {
    match serde_json::from_str::<OnePass<'_>>(doc) {
        Ok(OnePass(e)) => Ok(e),
        Err(_) => super::parse(doc),
    }
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

/// Whether objects of `resource` hold a pod spec or a pod template.
fn holds_pod(resource: &str) -> bool {
    POD_RESOURCES.contains(&resource)
}

/// Normalises one JSON document (an `Event` or an `EventList`), appending
/// to `out`; returns how many events it added.
pub fn normalise(
    doc: &str,
    origin: &Origin<'_>,
    out: &mut Vec<Event>,
) -> Result<usize, NormalizeError> {
    normalise_parsed(parse(doc)?, parse, origin, out)
}

/// How a document is parsed: [`parse`], or (in tests) the two-pass way.
type Parse = for<'a> fn(&'a str) -> Result<AuditEvent<'a>, NormalizeError>;

fn normalise_parsed(
    mut parsed: AuditEvent<'_>,
    parse: Parse,
    origin: &Origin<'_>,
    out: &mut Vec<Event>,
) -> Result<usize, NormalizeError> {
    match parsed.kind.as_deref() {
        Some("Event") => {
            out.push(event(parsed, origin)?);
            Ok(1)
        }
        Some("EventList") => {
            let items = parsed.items.take().unwrap_or_default();
            for item in &items {
                let e = parse(item.get())?;
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

/// A request or response body: still raw, or parsed in the first pass.
enum Body<'a> {
    Raw(&'a RawValue),
    Parsed(Box<Object<'a>>),
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
    let bodies = if holds_pod(&oref.resource) {
        [
            e.response_parsed
                .map(Body::Parsed)
                .or(e.response_object.map(Body::Raw)),
            e.request_object.map(Body::Raw),
        ]
    } else {
        [None, None]
    };
    // The pod's uid, from the response only: the API server wrote it; a
    // request body holds whatever the client sent.
    let mut pod_uid = None;
    for (i, body) in bodies.into_iter().enumerate() {
        let obj = match body {
            None => continue,
            Some(Body::Parsed(obj)) => *obj,
            Some(Body::Raw(raw)) => match serde_json::from_str::<Object<'_>>(raw.get()) {
                Ok(obj) => obj,
                // A pod whose spec is malformed is a bad record; any other body
                // that is not an object is none of our business.
                Err(_) => match spec_error(raw.get()) {
                    Some(e) => return Err(NormalizeError::Json(e)),
                    None => continue,
                },
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const ORIGIN: Origin<'static> = Origin {
        node: "node-a",
        source: "replay",
    };

    /// What `normalise` gives for `doc`, with the one-pass parse or the
    /// two-pass one: the events (as JSON) or the error's text.
    fn outcome(doc: &str, one_pass: bool) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        fn two_pass(doc: &str) -> Result<AuditEvent<'_>, NormalizeError> {
            super::super::parse(doc)
        }
        let parse: Parse = if one_pass { parse } else { two_pass };
        let n = parse(doc)
            .and_then(|p| normalise_parsed(p, parse, &ORIGIN, &mut out))
            .map_err(|e| e.to_string())?;
        assert_eq!(n, out.len());
        Ok(out
            .iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .collect())
    }

    fn same_either_way(doc: &str) -> Result<Vec<Value>, String> {
        let one = outcome(doc, true);
        assert_eq!(one, outcome(doc, false), "{doc}");
        one
    }

    fn falco_docs() -> Vec<String> {
        let dir = format!(
            "{}/../../../tests/data/k8s-audit/falco-0.34.1",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let mut docs = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            docs.extend(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_owned),
            );
            // The file as one document too: pretty-printed ones, and the
            // malformed one, whose error must not depend on the pass.
            docs.push(text);
        }
        docs
    }

    #[test]
    fn one_pass_and_two_passes_agree_on_every_falco_record() {
        let docs = falco_docs();
        let (mut ok, mut failed, mut one_pass_bodies) = (0, 0, 0);
        for doc in &docs {
            match same_either_way(doc) {
                Ok(_) => ok += 1,
                Err(_) => failed += 1,
            }
            if serde_json::from_str::<OnePass<'_>>(doc).is_ok_and(|p| p.0.response_parsed.is_some())
            {
                one_pass_bodies += 1;
            }
        }
        assert!(ok > 50 && failed > 0, "{ok} good, {failed} bad");
        // The point of it: pod responses are read in the first pass.
        assert!(
            one_pass_bodies >= 10,
            "{one_pass_bodies} bodies in one pass"
        );
    }

    /// A pod creation's audit line, fields in the API server's order, with
    /// `response` as its response body.
    fn pod_create(response: &str, object_ref_first: bool) -> String {
        let object_ref =
            r#""objectRef":{"resource":"pods","namespace":"default","name":"p","apiVersion":"v1"}"#;
        let head = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"create","user":{"username":"u"},"sourceIPs":["10.0.0.1"],"#;
        let request = r#""requestObject":{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#;
        let tail = r#""stageTimestamp":"2026-12-01T10:00:00.000000Z"}"#;
        if object_ref_first {
            format!(r#"{head}{object_ref},{request},"responseObject":{response},{tail}"#)
        } else {
            format!(r#"{head}"responseObject":{response},{request},{object_ref},{tail}"#)
        }
    }

    const POD: &str = r#"{"kind":"Pod","metadata":{"name":"p","namespace":"default","uid":"u-1"},"spec":{"hostPID":true,"containers":[{"name":"c","image":"busybox","securityContext":{"privileged":true}}]}}"#;

    #[test]
    fn a_pod_response_reads_the_same_in_one_pass_and_in_two() {
        let doc = pod_create(POD, true);
        let events = same_either_way(&doc).unwrap();
        assert!(
            serde_json::from_str::<OnePass<'_>>(&doc)
                .unwrap()
                .0
                .response_parsed
                .is_some()
        );
        let pod = &events[0]["body"]["pod"];
        assert_eq!(pod["host_pid"], json!(true), "{events:?}");
        assert_eq!(pod["containers"][0]["security"]["privileged"], json!(true));
        // `objectRef` after the body: not known in time, read the two-pass way.
        let late = pod_create(POD, false);
        assert!(
            serde_json::from_str::<OnePass<'_>>(&late)
                .unwrap()
                .0
                .response_parsed
                .is_none()
        );
        assert_eq!(same_either_way(&late).unwrap(), events);
    }

    #[test]
    fn mutated_records_read_the_same_in_one_pass_and_in_two() {
        use vigil_test_support::fuzz::{Rng, iterations, mutate_json};
        let mut seeds: Vec<String> = falco_docs()
            .into_iter()
            .filter(|d| d.contains("\"responseObject\"") && !d.trim_end().contains('\n'))
            .collect();
        seeds.push(pod_create(POD, true));
        let mut rng = Rng(0x0e9a_55ed_0000_0014);
        let (mut good, mut bad) = (0, 0);
        for _ in 0..iterations(3_000) {
            let seed = &seeds[rng.below(seeds.len())];
            let mutated = mutate_json(&mut rng, seed.as_bytes());
            let Ok(doc) = std::str::from_utf8(&mutated) else {
                continue;
            };
            match same_either_way(doc) {
                Ok(_) => good += 1,
                Err(_) => bad += 1,
            }
        }
        assert!(good > 100 && bad > 100, "{good} good, {bad} bad");
    }

    #[test]
    fn odd_and_hostile_pod_responses_give_the_same_outcome_either_way() {
        let cases = [
            // Its spec malformed: a bad record, explained the same way.
            (
                r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":5}}"#,
                false,
            ),
            (
                r#"{"kind":"Pod","spec":{"containers":[{"securityContext":{"privileged":"yes"}}]}}"#,
                false,
            ),
            // Not an object, or malformed outside its spec: none of our business.
            (r#""a string""#, true),
            ("null", true),
            ("[1,2]", true),
            (r#"{"kind":"Pod","metadata":{"name":7},"spec":{}}"#, true),
        ];
        for (response, good) in cases {
            for first in [true, false] {
                let doc = pod_create(response, first);
                let outcome = same_either_way(&doc);
                assert_eq!(outcome.is_ok(), good, "{doc}: {outcome:?}");
            }
        }
        // In an EventList, item by item.
        let list = format!(
            r#"{{"kind":"EventList","items":[{},{},{}]}}"#,
            pod_create(POD, true),
            pod_create(POD, false),
            pod_create(r#""a string""#, true)
        );
        assert_eq!(same_either_way(&list).unwrap().len(), 3);
        let bad = list.replacen(r#""privileged":true"#, r#""privileged":"yes""#, 1);
        assert!(same_either_way(&bad).is_err());
        // A body nested deeper than serde_json's limit counts from the line
        // in one pass, from the body in two: the one pass refuses it, and
        // the two-pass reading decides.
        for depth in [100, 125, 127, 128, 200] {
            let deep = format!(
                r#"{{"kind":"Pod","metadata":{{"name":"p","labels":{}{}}},"spec":{{}}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            );
            let _ = same_either_way(&pod_create(&deep, true));
        }
        // A field twice is refused, with the same error either way.
        let twice = pod_create(POD, true).replacen(
            r#""verb":"create","#,
            r#""verb":"create","verb":"get","#,
            1,
        );
        let e = same_either_way(&twice).unwrap_err();
        assert!(e.contains("duplicate field `verb`"), "{e}");
        let twice = pod_create(POD, true).replacen(
            r#""stageTimestamp""#,
            &format!(r#""responseObject":{POD},"stageTimestamp""#),
            1,
        );
        assert!(same_either_way(&twice).is_err());
    }
}
