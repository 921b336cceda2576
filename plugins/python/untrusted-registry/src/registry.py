"""Image references, the trusted-registry allowlist and the plugin's settings.

Pure Python with no dependency on the component bindings, so that it can be
tested natively (``python3 -m unittest discover -s tests``).
"""

import ipaddress
import json
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

DOCKER_HUB = "docker.io"
# Other names of Docker Hub's registry, as found in image references.
DOCKER_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")
# Docker Hub's official images live under this namespace (`nginx` is `docker.io/library/nginx`).
OFFICIAL_NAMESPACE = "library"


@dataclass(frozen=True)
class ImageRef:
    """An image reference split the way Docker resolves it.

    ``registry`` is lower case, with its port when one was given, and Docker
    Hub's aliases folded into ``docker.io``; ``repository`` is the path on
    the registry (``library/nginx`` for ``nginx``).
    """

    registry: str
    repository: str
    tag: str = ""
    digest: str = ""

    @property
    def host(self) -> str:
        """The registry without its port."""
        if self.registry.startswith("["):  # [::1]:5000
            return self.registry[1:].split("]", 1)[0]
        return self.registry.rsplit(":", 1)[0] if ":" in self.registry else self.registry

    def is_ip_literal(self) -> bool:
        """True when the registry is an IP address rather than a DNS name."""
        try:
            ipaddress.ip_address(self.host)
            return True
        except ValueError:
            return False


def is_image_id(reference: str) -> bool:
    """True for a content id (``sha256:…`` or 64 hex digits) rather than a name:
    such a reference says nothing about where the image came from."""
    ref = reference.strip().lower()
    if ref.startswith("sha256:"):
        ref = ref[len("sha256:"):]
    return len(ref) == 64 and all(c in "0123456789abcdef" for c in ref)


def parse_image(reference: str) -> Optional[ImageRef]:
    """Splits an image reference the way the Docker CLI and the kubelet do.

    The first path component is a registry when it contains a ``.`` or a
    ``:``, or is ``localhost``; otherwise the image is on Docker Hub, and a
    name without a ``/`` is an official image (``library/NAME``). Returns
    ``None`` for an empty reference or an image id.
    """
    ref = reference.strip()
    if not ref or is_image_id(ref):
        return None
    digest = ""
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    tag = ""
    last_slash = ref.rfind("/")
    last_colon = ref.rfind(":")
    if last_colon > last_slash:
        ref, tag = ref[:last_colon], ref[last_colon + 1:]
    first, slash, rest = ref.partition("/")
    if slash and ("." in first or ":" in first or first.startswith("[") or first == "localhost"):
        registry, repository = first.lower(), rest
    else:
        registry, repository = DOCKER_HUB, ref
    if registry in DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = OFFICIAL_NAMESPACE + "/" + repository
    if not repository:
        return None
    return ImageRef(registry, repository, tag, digest)


@dataclass(frozen=True)
class TrustEntry:
    """One entry of the allowlist, normalised.

    ``ghcr.io`` trusts a registry, ``ghcr.io/acme`` a namespace of it (path
    components match whole), ``*.corp.example`` every registry whose host is a
    subdomain of ``corp.example`` (any port).
    """

    text: str
    registry: str
    path: str = ""
    wildcard: bool = False

    def matches(self, image: ImageRef) -> bool:
        if self.wildcard:
            if not image.host.endswith("." + self.registry):
                return False
        elif image.registry != self.registry:
            return False
        if not self.path:
            return True
        return image.repository == self.path or image.repository.startswith(self.path + "/")


def parse_entry(text: str) -> Tuple[Optional[TrustEntry], str]:
    """Parses one allowlist entry; returns (entry, "") or (None, problem)."""
    entry = text.strip().lower()
    for scheme in ("https://", "http://"):
        if entry.startswith(scheme):
            entry = entry[len(scheme):]
    entry = entry.rstrip("/")
    if not entry:
        return None, "must not be empty"
    if any(c.isspace() for c in entry) or "@" in entry:
        return None, "must be a registry (`ghcr.io`, `registry.local:5000`), a registry and path (`ghcr.io/acme`) or `*.domain`"
    wildcard = entry.startswith("*.")
    if wildcard:
        entry = entry[2:]
    if "*" in entry:
        return None, "a wildcard is only allowed as a leading `*.`"
    registry, _, path = entry.partition("/")
    if registry in DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
    if not registry:
        return None, "names no registry"
    if wildcard and ":" in registry:
        return None, "a `*.domain` entry matches any port: leave the port out"
    return TrustEntry(text=text, registry=registry, path=path, wildcard=wildcard), ""


@dataclass
class Settings:
    """The plugin's settings, validated."""

    trusted_registries: List[TrustEntry] = field(default_factory=list)
    trust_docker_hub_official: bool = True
    ignored_namespaces: List[str] = field(default_factory=list)

    def trust(self, image: ImageRef) -> Optional[TrustEntry]:
        """The allowlist entry that trusts ``image``, or ``None``."""
        for entry in self.trusted_registries:
            if entry.matches(image):
                return entry
        if (
            self.trust_docker_hub_official
            and image.registry == DOCKER_HUB
            and image.repository.startswith(OFFICIAL_NAMESPACE + "/")
            and image.repository.count("/") == 1
        ):
            return TrustEntry(text="(Docker Hub official images)", registry=DOCKER_HUB, path=OFFICIAL_NAMESPACE)
        return None

    def trusted_summary(self) -> str:
        """The allowlist as shown in evidence."""
        items = [e.text for e in self.trusted_registries]
        if self.trust_docker_hub_official:
            items.append("docker.io/library (official images)")
        return ", ".join(items) if items else "(none)"


# Setting name → (kind in words, default as JSON, description); also `describe()`'s list.
SETTINGS_DOC = [
    ("trusted_registries", "list of strings", "[]",
     "Registries whose images are trusted: `ghcr.io`, `registry.local:5000`, a namespace `ghcr.io/acme`, or `*.corp.example`."),
    ("trust_docker_hub_official", "boolean", "true",
     "Trust Docker Hub's official images (`nginx`, `docker.io/library/redis`)."),
    ("ignored_namespaces", "list of strings", "[]",
     "Kubernetes namespaces whose pods are not checked."),
]


def parse_settings(text: str) -> Tuple[Optional[Settings], List[Tuple[str, str]]]:
    """Parses the settings JSON; returns (settings, []) or (None, every problem as (path, message))."""
    problems: List[Tuple[str, str]] = []
    try:
        doc = json.loads(text)
    except ValueError as e:
        return None, [("", "not JSON: " + str(e))]
    if not isinstance(doc, dict):
        return None, [("", "must be a JSON object")]
    settings = Settings()
    known = {name for name, _, _, _ in SETTINGS_DOC}
    for key in sorted(doc):
        if key not in known:
            problems.append((key, "unknown setting (known: " + ", ".join(sorted(known)) + ")"))

    def strings(name: str) -> List[Tuple[int, str]]:
        """The non-empty strings of a list setting, with their index; a problem for each other item."""
        value = doc.get(name, [])
        if not isinstance(value, list):
            problems.append((name, "must be a list of strings"))
            return []
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                problems.append((f"{name}[{i}]", "must be a string"))
            elif not item.strip():
                problems.append((f"{name}[{i}]", "must not be empty"))
            else:
                out.append((i, item))
        return out

    for i, text_entry in strings("trusted_registries"):
        entry, problem = parse_entry(text_entry)
        if entry is None:
            problems.append((f"trusted_registries[{i}]", problem))
        else:
            settings.trusted_registries.append(entry)
    official = doc.get("trust_docker_hub_official", True)
    if not isinstance(official, bool):
        problems.append(("trust_docker_hub_official", "must be true or false"))
    else:
        settings.trust_docker_hub_official = official
    settings.ignored_namespaces = [ns for _, ns in strings("ignored_namespaces")]
    if problems:
        return None, problems
    return settings, []
