"""EC2's eventual consistency, replayed by the local cloud's gateway.

On AWS a resource just created is not at once visible everywhere: DescribeInstances right
after RunInstances may answer ``InvalidInstanceID.NotFound``, AuthorizeSecurityGroupIngress
right after CreateSecurityGroup ``InvalidGroup.NotFound``, CreateTags on a new image
``InvalidAMIID.NotFound``, RunInstances with a key pair created a moment ago
``InvalidKeyPair.NotFound``. A client must retry those codes for that resource, for a bounded
time, as Packer does.

:class:`ConsistencyTracker` notes what each successful create returned and, while the
effective :class:`~amibake.core.local.latency.Consistency` is eventual, answers the calls naming a
still-hidden resource with that resource's NotFound error. Only calls naming resources by id
or key name are affected; a Describe* by filters alone is answered as moto sees it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from amibake.core.local.latency import Consistency

#: What each create returns, as (response element, resource kind).
_CREATED: dict[str, tuple[str, ...]] = {
    "RunInstances": ("instanceId",),
    "CreateSecurityGroup": ("groupId",),
    "CreateImage": ("imageId",),
    "CopyImage": ("imageId",),
    "RegisterImage": ("imageId",),
    "CreateKeyPair": ("keyName", "keyPairId"),
    "ImportKeyPair": ("keyName", "keyPairId"),
}

#: Request parameters (before any ``.N``) that name a resource.
_NAMING_PARAMETERS = frozenset(
    {
        "InstanceId",
        "ResourceId",
        "GroupId",
        "SecurityGroupId",
        "ImageId",
        "KeyName",
        "KeyPairId",
    }
)

_KIND_OF_ELEMENT = {
    "instanceId": "instance",
    "groupId": "group",
    "imageId": "image",
    "keyName": "key",
    "keyPairId": "key",
}

#: (error code, message template) per kind, as EC2 words them.
NOT_FOUND: dict[str, tuple[str, str]] = {
    "instance": ("InvalidInstanceID.NotFound", "The instance ID '{}' does not exist"),
    "group": ("InvalidGroup.NotFound", "The security group '{}' does not exist"),
    "image": ("InvalidAMIID.NotFound", "The image id '[{}]' does not exist"),
    "key": ("InvalidKeyPair.NotFound", "The key pair '{}' does not exist"),
}


def _affected(action: str) -> bool:
    return action.startswith(("Describe", "Authorize")) or action in ("CreateTags", "RunInstances")


@dataclass(slots=True)
class _Hidden:
    kind: str
    calls_left: int
    until: float  # time.monotonic()


class ConsistencyTracker:
    """Thread-safe: the gateway serves requests from several threads."""

    def __init__(self, profile: Callable[[], Consistency]) -> None:
        self._profile = profile
        self._hidden: dict[tuple[str, str], _Hidden] = {}
        self._lock = threading.Lock()
        #: how many calls were answered NotFound, per error code (for tests and status)
        self.answered: dict[str, int] = {}

    def created(self, region: str, action: str, payload: bytes) -> None:
        """After a successful call: hide what it created, if consistency is eventual."""
        elements = _CREATED.get(action)
        if elements is None:
            return
        profile = self._profile()
        if not profile.eventual:
            return
        text = payload.decode("utf-8", "replace")
        until = time.monotonic() + profile.hidden_seconds
        with self._lock:
            for element in elements:
                for value in re.findall(rf"<{element}>([^<]+)</{element}>", text):
                    kind = _KIND_OF_ELEMENT[element]
                    self._hidden[(region, value)] = _Hidden(kind, profile.hidden_calls, until)

    def check(
        self, region: str, action: str, body: bytes, query: str = ""
    ) -> tuple[str, str] | None:
        """Before a call: (error code, message) if it names a resource not visible yet."""
        if not self._hidden or not _affected(action):
            return None
        names: list[str] = []
        for source in (body.decode("utf-8", "replace"), query):
            for key, values in parse_qs(source).items():
                if key.split(".", 1)[0] in _NAMING_PARAMETERS:
                    names.extend(values)
        now = time.monotonic()
        answer: tuple[str, str] | None = None
        with self._lock:
            for name in names:
                hidden = self._hidden.get((region, name))
                if hidden is None:
                    continue
                if hidden.calls_left <= 0 or now >= hidden.until:
                    del self._hidden[(region, name)]
                    continue
                hidden.calls_left -= 1
                if answer is None:
                    code, message = NOT_FOUND[hidden.kind]
                    answer = (code, message.format(name))
            if answer is not None:
                self.answered[answer[0]] = self.answered.get(answer[0], 0) + 1
        return answer

    def forget(self) -> None:
        with self._lock:
            self._hidden.clear()
