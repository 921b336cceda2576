"""{{name}}: a Vigil detector plugin in Python (scaffolded by `vigil plugin new`).

The sample rule reports exec sessions started in a container with
`--privileged` (`docker exec --privileged`): the command runs with every
capability and device of the host. Replace it with your own logic.

The exports are the methods of `WitWorld`; componentize-py generates the
`wit_world` package from `wit/` when it builds the component. Built with
`--stub-wasi`, the component has no WASI: `print()` and uncaught exceptions
trap, so log through `log.log` and return findings.
"""

import json
from typing import List

import wit_world
from componentize_py_types import Err
from wit_world.imports import log, types
from wit_world.imports.types import (
    ContainerAction,
    Entity,
    EntityKind,
    EventBody_Container,
    EventKind,
    Finding,
    KeyValue,
    Severity,
)

NAME = "{{name}}"


class Settings:
    """The settings, validated: every problem is reported with its path."""

    def __init__(self) -> None:
        # Container names whose privileged execs are not reported.
        self.ignored_containers: List[str] = []


SETTINGS = Settings()


def problem(path: str, message: str) -> types.ConfigProblem:
    return types.ConfigProblem(path=path, message=message)


class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(
            name=NAME,
            version="0.1.0",
            description="Exec sessions started with --privileged in a container.",
            subscribes=[EventKind.CONTAINER],
            settings=[
                types.SettingInfo(
                    name="ignored_containers",
                    kind="list of strings",
                    default_value="[]",
                    description="Container names whose privileged execs are not reported.",
                ),
            ],
        )

    def configure(self, settings: str) -> None:
        try:
            doc = json.loads(settings or "{}")
        except ValueError as e:
            raise Err(types.ConfigError(problems=[problem("", f"not JSON: {e}")]))
        if not isinstance(doc, dict):
            raise Err(types.ConfigError(problems=[problem("", "must be a JSON object")]))
        problems = [problem(k, "unknown setting") for k in sorted(doc) if k != "ignored_containers"]
        ignored = doc.get("ignored_containers", [])
        if not isinstance(ignored, list):
            problems.append(problem("ignored_containers", "must be a list of strings"))
            ignored = []
        for i, name in enumerate(ignored):
            if not isinstance(name, str) or not name.strip():
                problems.append(problem(f"ignored_containers[{i}]", "must be a non-empty string"))
        if problems:
            raise Err(types.ConfigError(problems=problems))
        SETTINGS.ignored_containers = ignored
        log.log(log.Level.INFO, "configured", [KeyValue(key="ignored_containers", value=str(len(ignored)))])

    def on_events(self, batch: List[types.Event]) -> List[types.Finding]:
        findings = []
        for event in batch:
            if not isinstance(event.body, EventBody_Container):
                continue
            c = event.body.value
            if (
                c.action != ContainerAction.EXEC_START
                or c.exec is None
                or not c.exec.privileged
                or c.name in SETTINGS.ignored_containers
            ):
                continue
            findings.append(Finding(
                rule_id=f"{NAME}/privileged-exec",
                title="Privileged exec in a container",
                severity=Severity.HIGH,
                summary=f"`{c.exec.command}` was run with --privileged in container {c.name}.",
                techniques=["T1609"],
                entities=[
                    Entity(kind=EntityKind.CONTAINER, id=c.id, name=c.name),
                    Entity(kind=EntityKind.IMAGE, id=c.image, name=""),
                ],
                evidence=[
                    KeyValue(key="command", value=c.exec.command),
                    KeyValue(key="user", value=c.exec.user),
                    KeyValue(key="privileged", value="true"),
                ],
                event_ids=[event.id],
            ))
        return findings

    def on_tick(self, now: int) -> List[types.Finding]:
        return []
