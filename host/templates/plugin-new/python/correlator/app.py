"""{{name}}: a Vigil correlation plugin in Python (scaffolded by
`vigil plugin new --kind correlator`).

A correlator exports `correlate` besides the detector functions: the host
hands it the findings the other plugins reported (never its own), with its
verdict on each entity. The sample rule reports a container that two or more
other plugins reported (say container-escape for `--network host`, then
suspicious-egress for a connection to a C2 address): one finding per
container, naming the plugins and the findings it stands on. Replace it with
your own logic.

Built with `--stub-wasi`, the component has no WASI: `print()` and uncaught
exceptions trap, so log through `log.log` and return findings.
"""

import json
from typing import Dict, List, Set

import wit_world
from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import log, types
from wit_world.imports.types import (
    Entity,
    EntityKind,
    EntityVerdict,
    Finding,
    FindingEvent,
    KeyValue,
    Severity,
)

NAME = "{{name}}"
RULE = f"{NAME}/multi-plugin"


class Settings:
    """The settings, validated: every problem is reported with its path."""

    def __init__(self) -> None:
        # How many distinct plugins must report one container.
        self.min_plugins = 2


SETTINGS = Settings()


class Seen:
    """What the other plugins reported about one container."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.plugins: Set[str] = set()
        self.rules: List[str] = []
        self.finding_ids: List[str] = []
        self.reported = False


# Container id -> what was seen. Kept in memory: a restart starts afresh.
# Bounded: the oldest containers are forgotten first.
SEEN: Dict[str, Seen] = {}
MAX_CONTAINERS = 10_000


def problem(path: str, message: str) -> types.ConfigProblem:
    return types.ConfigProblem(path=path, message=message)


class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(
            name=NAME,
            version="0.1.0",
            description="A container reported by two or more other plugins.",
            # Findings come through `correlate`; no events are needed.
            subscribes=[],
            settings=[
                types.SettingInfo(
                    name="min_plugins",
                    kind="integer >= 2",
                    default_value="2",
                    description="How many distinct plugins must report one container.",
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
        problems = [problem(k, "unknown setting") for k in sorted(doc) if k != "min_plugins"]
        minimum = doc.get("min_plugins", 2)
        if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 2:
            problems.append(problem("min_plugins", "must be an integer of at least 2"))
        if problems:
            raise Err(types.ConfigError(problems=problems))
        SETTINGS.min_plugins = minimum
        log.log(log.Level.INFO, "configured", [KeyValue(key="min_plugins", value=str(minimum))])

    def on_events(self, batch: List[types.Event]) -> List[Finding]:
        return []

    def on_tick(self, now: int) -> List[Finding]:
        return []


class Correlate(exports.Correlate):
    def on_findings(self, batch: List[FindingEvent]) -> List[Finding]:
        findings = []
        for fe in batch:
            # Only findings made from events: other correlators' findings
            # (depth 1 and more) would count one story twice.
            if fe.depth > 0:
                continue
            # Only containers the host verified for the reporting plugin: a
            # plugin can name any container, it was shown only some.
            for entity, verdict in zip(fe.finding.entities, fe.verdicts):
                if entity.kind != EntityKind.CONTAINER or verdict != EntityVerdict.VERIFIED:
                    continue
                seen = SEEN.get(entity.id)
                if seen is None:
                    if len(SEEN) >= MAX_CONTAINERS:
                        del SEEN[next(iter(SEEN))]
                    seen = SEEN[entity.id] = Seen(entity.name)
                seen.plugins.add(fe.plugin)
                seen.rules.append(fe.finding.rule_id)
                seen.finding_ids.append(fe.id)
                if seen.reported or len(seen.plugins) < SETTINGS.min_plugins:
                    continue
                seen.reported = True
                plugins = sorted(seen.plugins)
                findings.append(Finding(
                    rule_id=RULE,
                    title=f"Container {seen.name} reported by {len(plugins)} plugins",
                    severity=Severity.HIGH,
                    summary=(
                        f"Container {seen.name} was reported by {', '.join(plugins)}: "
                        f"{', then '.join(seen.rules)}."
                    ),
                    techniques=[],
                    entities=[Entity(kind=EntityKind.CONTAINER, id=entity.id, name=seen.name)],
                    evidence=[
                        KeyValue(key="plugins", value=",".join(plugins)),
                        KeyValue(key="rules", value=",".join(seen.rules)),
                    ],
                    # The findings it stands on, by their ids.
                    event_ids=list(seen.finding_ids),
                ))
        return findings
