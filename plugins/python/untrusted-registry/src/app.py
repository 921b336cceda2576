"""untrusted-registry: containers and pods whose image comes from a registry
that is not in the operator's allowlist.

The component's exports (``describe``, ``configure``, ``on_events``,
``on_tick``) are the methods of ``WitWorld`` below; componentize-py generates
the ``wit_world`` package from ``wit/`` at build time.

Built with ``--stub-wasi``, the component imports nothing but the
``vigil:detector`` interfaces, and ``print()`` or an uncaught exception traps:
everything is logged through the host's ``log`` import instead.
"""

from collections import OrderedDict
from typing import List, Optional, Tuple

import wit_world
from componentize_py_types import Err
from wit_world.imports import log, types
from wit_world.imports.types import (
    ContainerAction,
    ContainerRole,
    Entity,
    EntityKind,
    EventBody_Container,
    EventBody_Kubernetes,
    EventKind,
    Finding,
    KeyValue,
    Severity,
)

import registry

NAME = "untrusted-registry"
VERSION = "0.1.0"
TECHNIQUES = ["T1610", "T1204.003"]
# Container actions that say which image a container runs; `running` is the
# inventory of containers found at startup.
CONTAINER_ACTIONS = (ContainerAction.CREATE, ContainerAction.START, ContainerAction.RUNNING)
# Verbs that create or change a pod: audit verbs and watch event types.
POD_WRITE_VERBS = ("create", "update", "patch", "added", "modified")
# How many reported containers and pods are remembered, so that a Docker
# `create` then `start`, or a watched pod's `modified` events, give one finding.
REMEMBERED = 4096


class _Bounded:
    """An insertion-ordered set that forgets its oldest keys past a size."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.keys: "OrderedDict[str, None]" = OrderedDict()

    def add(self, key: str) -> bool:
        """Adds ``key``; False when it was already there."""
        if key in self.keys:
            return False
        self.keys[key] = None
        if len(self.keys) > self.size:
            self.keys.popitem(last=False)
        return True


def _kv(pairs: List[Tuple[str, str]]) -> List[KeyValue]:
    return [KeyValue(key=k, value=v) for k, v in pairs if v != ""]


def _image_evidence(image: registry.ImageRef) -> List[Tuple[str, str]]:
    return [
        ("registry", image.registry),
        ("repository", image.repository),
        ("tag", image.tag),
        ("digest", image.digest),
    ]


Verdict = Optional[Tuple[str, Severity, registry.ImageRef, str]]
# Verdicts are memoised per image reference (a node runs few distinct images);
# the memo is cleared when settings change or it grows past this.
VERDICTS = 1024


class Detector:
    def __init__(self) -> None:
        self.settings = registry.Settings()
        self.seen = _Bounded(REMEMBERED)
        self.verdicts: "dict[str, Verdict]" = {}
        self.trusted = self.settings.trusted_summary()
        self.logged_image_ids = False

    def configure(self, settings: registry.Settings) -> None:
        self.settings = settings
        self.trusted = settings.trusted_summary()
        self.verdicts.clear()

    def verdict(self, reference: str) -> Verdict:
        """(rule, severity, parsed image, reason) for an untrusted image; None when trusted or unparseable."""
        try:
            return self.verdicts[reference]
        except KeyError:
            pass
        if len(self.verdicts) >= VERDICTS:
            self.verdicts.clear()
        verdict = self.verdicts[reference] = self.decide(reference)
        return verdict

    def decide(self, reference: str) -> Verdict:
        image = registry.parse_image(reference)
        if image is None:
            if registry.is_image_id(reference) and not self.logged_image_ids:
                self.logged_image_ids = True
                log.log(log.Level.INFO, "images referenced by id are not checked: their registry is unknown",
                        [KeyValue(key="image", value=reference)])
            return None
        if self.settings.trust(image) is not None:
            return None
        if image.is_ip_literal():
            return (f"{NAME}/ip-registry", Severity.HIGH, image,
                    f"registry {image.registry} is an IP address, not in trusted_registries")
        if image.registry == registry.DOCKER_HUB and self.settings.trust_docker_hub_official:
            reason = "Docker Hub image outside the official library; only official images are trusted"
        else:
            reason = f"registry {image.registry} is not in trusted_registries"
        return (f"{NAME}/untrusted-image", Severity.MEDIUM, image, reason)

    def container(self, event: types.Event, c: types.ContainerEvent, out: List[Finding]) -> None:
        if c.action not in CONTAINER_ACTIONS:
            return
        verdict = self.verdict(c.image)
        if verdict is None or not self.seen.add("container\0" + c.id + "\0" + c.image):
            return
        rule, severity, image, reason = verdict
        name = c.name or c.id[:12]
        out.append(Finding(
            rule_id=rule,
            title="Container from an untrusted registry" if severity != Severity.HIGH
            else "Container from a registry addressed by IP",
            severity=severity,
            summary=f"Container {name} runs image {c.image} ({reason}).",
            techniques=TECHNIQUES,
            entities=[
                Entity(kind=EntityKind.CONTAINER, id=c.id, name=c.name),
                Entity(kind=EntityKind.IMAGE, id=c.image, name=""),
            ] + ([Entity(kind=EntityKind.NODE, id=event.node, name="")] if event.node else []),
            evidence=_kv([
                ("image", c.image),
                *_image_evidence(image),
                ("reason", reason),
                ("trusted_registries", self.trusted),
                ("container", c.name),
                ("action", c.action.name.lower().replace("_", "-")),
                ("actor", c.actor),
            ]),
            event_ids=[event.id],
        ))

    def pod(self, event: types.Event, k: types.KubernetesEvent, out: List[Finding]) -> None:
        pod = k.pod
        if (
            pod is None
            or k.verb not in POD_WRITE_VERBS
            or k.subresource not in ("", "ephemeralcontainers")
            or k.stage not in ("", "ResponseComplete")
            or (k.response_code is not None and k.response_code >= 400)
            or k.namespace in self.settings.ignored_namespaces
        ):
            return
        # rule → (severity, [(container, role, image, parsed, reason)])
        hits = {}
        for container in pod.containers:
            verdict = self.verdict(container.image)
            if verdict is None:
                continue
            rule, severity, image, reason = verdict
            hits.setdefault(rule, (severity, []))[1].append((container, image, reason))
        if not hits:
            return
        # A pod created with `generateName` has no name yet: it is named after
        # its owner, as container-escape does.
        pod_name = k.name or (k.owner.name if k.owner is not None and k.owner.name else "(unnamed)")
        pod_id = f"{k.namespace}/{pod_name}"
        images = sorted({c.image for c in pod.containers})
        if not self.seen.add("pod\0" + pod_id + "\0" + "\0".join(images)):
            return
        for rule in sorted(hits):
            severity, matched = hits[rule]
            evidence: List[Tuple[str, str]] = []
            for container, image, reason in matched:
                evidence.append(("container", container.name))
                if container.role != ContainerRole.MAIN:
                    evidence.append(("container.role", container.role.name.lower()))
                evidence.append(("image", container.image))
                evidence.extend(_image_evidence(image))
                evidence.append(("reason", reason))
            evidence += [
                ("trusted_registries", self.trusted),
                ("namespace", k.namespace),
                ("verb", k.verb),
                ("user", k.user),
                ("owner", f"{k.owner.kind}/{k.owner.name}" if k.owner is not None else ""),
            ]
            bad_images = sorted({c.image for c, _, _ in matched})
            out.append(Finding(
                rule_id=rule,
                title="Pod with an image from an untrusted registry" if severity != Severity.HIGH
                else "Pod with an image from a registry addressed by IP",
                severity=severity,
                summary=f"Pod {pod_id} runs {', '.join(bad_images)}: {matched[0][2]}.",
                techniques=TECHNIQUES,
                entities=[Entity(kind=EntityKind.POD, id=pod_id, name="")]
                + [Entity(kind=EntityKind.IMAGE, id=i, name="") for i in bad_images],
                evidence=_kv(evidence),
                event_ids=[event.id],
            ))


DETECTOR = Detector()


class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(
            name=NAME,
            version=VERSION,
            description="Containers and pods running an image from a registry that is not in the allowlist "
            "(by default only Docker Hub's official images are trusted). Written in Python.",
            subscribes=[EventKind.CONTAINER, EventKind.KUBERNETES],
            settings=[
                types.SettingInfo(name=n, kind=k, default_value=d, description=desc)
                for n, k, d, desc in registry.SETTINGS_DOC
            ],
        )

    def configure(self, settings: str) -> None:
        parsed, problems = registry.parse_settings(settings)
        if parsed is None:
            raise Err(types.ConfigError(problems=[types.ConfigProblem(path=p, message=m) for p, m in problems]))
        DETECTOR.configure(parsed)
        log.log(log.Level.INFO, "configured", [
            KeyValue(key="trusted_registries", value=parsed.trusted_summary()),
            KeyValue(key="ignored_namespaces", value=", ".join(parsed.ignored_namespaces) or "(none)"),
        ])

    def on_events(self, batch: List[types.Event]) -> List[types.Finding]:
        out: List[Finding] = []
        for event in batch:
            body = event.body
            if isinstance(body, EventBody_Container):
                DETECTOR.container(event, body.value, out)
            elif isinstance(body, EventBody_Kubernetes):
                DETECTOR.pod(event, body.value, out)
        return out

    def on_tick(self, now: int) -> List[types.Finding]:
        return []
