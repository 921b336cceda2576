"""Validates Vigil's OCSF output with py-ocsf-models, an independent OCSF
implementation (pydantic models of the OCSF schema).

Reads a JSON array of events from the file named on the command line. Each
must parse as a DetectionFinding and lose nothing in the round trip: a key
the models do not know (pydantic ignores extras by default) is reported as
an error, so a misspelt or misplaced attribute fails too. Prints one line per
problem and exits 1 if there is any.
"""

import json
import sys

from py_ocsf_models import OCSF_VERSION
from py_ocsf_models.events.findings.detection_finding import DetectionFinding


def unknown_keys(sent, parsed, path):
    """Keys present in what Vigil sent but absent after parsing."""
    problems = []
    if isinstance(sent, dict):
        if not isinstance(parsed, dict):
            return [f"{path}: became {type(parsed).__name__}"]
        for key, value in sent.items():
            if key not in parsed:
                # `data` objects are free-form: their keys are kept as is.
                problems.append(f"{path}.{key}: not an attribute of the OCSF model")
            else:
                problems.extend(unknown_keys(value, parsed[key], f"{path}.{key}"))
    elif isinstance(sent, list):
        if not isinstance(parsed, list) or len(parsed) != len(sent):
            return [f"{path}: list changed in the round trip"]
        for i, (s, p) in enumerate(zip(sent, parsed)):
            problems.extend(unknown_keys(s, p, f"{path}[{i}]"))
    return problems


def main():
    with open(sys.argv[1]) as f:
        events = json.load(f)
    problems = []
    for i, event in enumerate(events):
        where = f"event[{i}] ({event.get('finding_info', {}).get('uid', '?')})"
        try:
            model = DetectionFinding.model_validate(event)
        except Exception as e:  # pydantic.ValidationError, enum errors
            problems.append(f"{where}: {e}")
            continue
        parsed = json.loads(model.model_dump_json(exclude_none=True))
        problems.extend(f"{where}: {p}" for p in unknown_keys(event, parsed, "$"))
        if model.class_uid != 2004 or model.category_uid != 2:
            problems.append(f"{where}: not a Detection Finding")
        if model.type_uid != model.class_uid * 100 + model.activity_id:
            problems.append(f"{where}: type_uid is not class_uid * 100 + activity_id")
        if model.metadata.version != OCSF_VERSION:
            problems.append(f"{where}: metadata.version {model.metadata.version} != {OCSF_VERSION}")
    for p in problems:
        print(p)
    print(f"{len(events)} events, {len(problems)} problems (py-ocsf-models, OCSF {OCSF_VERSION})")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
