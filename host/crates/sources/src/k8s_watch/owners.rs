//! Owner attribution: a pod's controller, followed through its ReplicaSet
//! to the Deployment (DaemonSets, Jobs and StatefulSets own pods directly).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use vigil_core::model::OwnerRef;

/// The controlling owner of an object: the ownerReference with
/// `controller: true`, else the first one.
pub fn controller_of(meta: &ObjectMeta) -> Option<OwnerRef> {
    let refs = meta.owner_references.as_deref()?;
    let r = refs
        .iter()
        .find(|r| r.controller == Some(true))
        .or_else(|| refs.first())?;
    Some(OwnerRef {
        kind: r.kind.clone(),
        name: r.name.clone(),
    })
}

/// The workload owning a pod: a ReplicaSet owner is replaced by the
/// ReplicaSet's own controller (its Deployment) when `lookup` knows it.
pub fn resolve_owner(
    namespace: &str,
    owner: Option<OwnerRef>,
    lookup: &dyn Fn(&str, &str) -> Option<OwnerRef>,
) -> Option<OwnerRef> {
    let owner = owner?;
    if owner.kind == "ReplicaSet"
        && let Some(up) = lookup(namespace, &owner.name)
    {
        return Some(up);
    }
    Some(owner)
}
