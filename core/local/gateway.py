"""The local cloud's HTTP front: fault injection, moto under a lock, control endpoints.

Every AWS request passes through :class:`Gateway` before moto sees it: the
fault plan may delay it or answer it with an AWS error; otherwise moto handles
it, and afterwards the region's own images are saved. Only moto's handlers (the
view functions that read and change its backends and render the answer) run
under the cloud's lock: routing, request parsing and the WSGI work around them
run in parallel across request threads (issue 16).

Control endpoints (JSON, for tests and chaos runs in other processes):

* ``GET /_amibake/status``: endpoint, latency, addressing, isolation, faults;
* ``PUT /_amibake/faults`` (a fault plan) / ``DELETE /_amibake/faults``;
* ``PUT /_amibake/latency`` with ``{"profile": "fast"}``;
* ``GET /_amibake/requests`` (the latest requests: action, signing key id, STS parameters),
  ``DELETE`` forgets them.

An AWS request from any credentials lands in the cloud's one account (AssumeRole into
another account's role included); STS DecodeAuthorizationMessage is answered here.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import json
import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from amibake.core.errors import AmibakeError
from amibake.core.local.consistency import ConsistencyTracker
from amibake.core.local.faults import FaultPlan, FaultRule

if TYPE_CHECKING:
    from amibake.core.local.cloud import LocalCloud

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]

_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")
#: how many requests GET /_amibake/requests remembers
REQUEST_LOG = 2000
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
_READ_ONLY = ("Describe", "Get", "List")


_IMAGE_ID = re.compile(rb"<imageId>(ami-[0-9a-f]+)</imageId>")


def _changes_registry(action: str, body: bytes) -> bool:
    """Whether a successful call may change what the registry persists (the account's
    images and snapshots, their tags and permissions): saving after every other mutating
    call (RunInstances, StopInstances, CreateTags on an instance...) costs time for nothing."""
    if "Image" in action or "Snapshot" in action:
        return True
    return action in ("CreateTags", "DeleteTags") and (b"ami-" in body or b"snap-" in body)


def request_scope(environ: dict[str, Any]) -> tuple[str, str]:
    """(service, region) from the SigV4 Authorization header; ec2/us-east-1 when unsigned."""
    match = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match is None:
        return "ec2", "us-east-1"
    return match.group(2), match.group(1)


def _serialised(view: Callable[..., Any], lock: threading.RLock) -> Callable[..., Any]:
    """A moto view function that runs under ``lock`` (moto's backends are not thread-safe)."""

    @functools.wraps(view)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return view(*args, **kwargs)

    return locked


#: moto's own listing of its service folders, kept when :func:`install_moto_caches` replaces it
_moto_listing: list[Callable[[], Iterable[str]]] = []


@functools.lru_cache(maxsize=1)
def _moto_modules() -> tuple[str, ...]:
    """moto's service folders: moto lists its package directory (a stat per folder) on every
    request to route it; the installed package does not change while the process runs."""
    return tuple(_moto_listing[0]())


_METHOD_NAMES: dict[type, tuple[tuple[int, ...], frozenset[str]]] = {}
_METHOD_NAMES_LOCK = threading.Lock()


def method_names(clazz: type) -> frozenset[str]:
    """The function names of a moto response class (which actions it answers), cached.

    moto runs ``inspect.getmembers`` over the class (a thousand attributes for EC2) on
    every request. The cache entry is keyed by the sizes of the class's and its bases'
    ``__dict__``: adding or removing a method (a patch that adds an action) changes one and
    recomputes; replacing a method (moto_ext's patches) leaves the names as they were."""
    key = tuple(len(vars(base)) for base in clazz.__mro__)
    cached = _METHOD_NAMES.get(clazz)
    if cached is not None and cached[0] == key:
        return cached[1]
    import inspect

    names = frozenset(name for name, _ in inspect.getmembers(clazz, inspect.isfunction))
    with _METHOD_NAMES_LOCK:
        _METHOD_NAMES[clazz] = (key, names)
    return names


def install_moto_caches() -> None:
    """Replace the two listings moto recomputes per request with cached ones (idempotent)."""
    from moto import backends
    from moto.core import responses

    if backends.list_of_moto_modules is not _moto_modules:
        _moto_listing[:] = [backends.list_of_moto_modules]
        backends.list_of_moto_modules = _moto_modules  # patching moto's function: cached
    responses.method_names_from_class = method_names  # type: ignore[assignment]  # patching moto's function: cached


def error_body(service: str, code: str, message: str) -> bytes:
    request_id = str(uuid.uuid4())
    if service == "ec2":
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        ).encode()
    return (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
        f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()


class Gateway:
    def __init__(self, cloud: LocalCloud, moto_app: Callable[..., Iterable[bytes]]) -> None:
        self.cloud = cloud
        self.moto_app = moto_app
        install_moto_caches()
        #: moto's dispatcher creates one Flask app per service: their view functions run
        #: under the cloud's lock, the rest of a request outside it. Any other WSGI app is
        #: called under the lock as a whole.
        self._views_serialised = self._serialise_views(moto_app)
        #: the latest requests: service, action, region, the signing access key id, and for
        #: STS the parameters (what tests assert about AssumeRole); see GET /_amibake/requests
        self.requests: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG)
        self._requests_lock = threading.Lock()
        #: region -> AMI ids of CopyImage copies (the fault plan's copy_image_limit)
        self._copies: dict[str, set[str]] = {}
        #: eventual consistency: the fault plan's, else the latency profile's (issue 13)
        self.consistency = ConsistencyTracker(
            lambda: self.cloud.faults.consistency or self.cloud.latency.consistency
        )

    def _serialise_views(self, moto_app: Any) -> bool:
        create_app = getattr(moto_app, "create_app", None)
        if create_app is None:
            return False
        lock = self.cloud.moto_lock

        def create_serialised(service: str) -> Any:
            app = create_app(service)
            for endpoint, view in list(app.view_functions.items()):
                app.view_functions[endpoint] = _serialised(view, lock)
            return app

        moto_app.create_app = create_serialised
        return True

    def _note(self, environ: dict[str, Any], service: str, action: str, body: bytes) -> None:
        match = _ACCESS_KEY.search(environ.get("HTTP_AUTHORIZATION", ""))
        entry: dict[str, Any] = {
            "service": service,
            "action": action,
            "region": request_scope(environ)[1],
            "access_key_id": match.group(1) if match else None,
            "session_token": bool(environ.get("HTTP_X_AMZ_SECURITY_TOKEN")),
            "host": environ.get("HTTP_HOST", ""),
        }
        if service == "sts":
            query = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            entry["params"] = {k: v[0] for k, v in query.items() if k not in ("Action", "Version")}
        with self._requests_lock:
            self.requests.append(entry)

    def _decode_authorization(self, start_response: StartResponse, body: bytes) -> Iterable[bytes]:
        """STS DecodeAuthorizationMessage (moto has none): the local cloud's encoded messages
        are base64url JSON (a fault plan's error message may carry one); anything else is
        InvalidAuthorizationMessageException, as AWS answers."""
        encoded = parse_qs(body.decode("utf-8", "replace")).get("EncodedMessage", [""])[0]
        try:
            decoded = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            json.loads(decoded)
        except ValueError:
            error = error_body(
                "sts",
                "InvalidAuthorizationMessageException",
                "The encoded authorization message is invalid.",
            )
            start_response("400 Bad Request", [("Content-Type", "text/xml")])
            return [error]
        answer = (
            '<DecodeAuthorizationMessageResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            f"<DecodeAuthorizationMessageResult><DecodedMessage>{escape(decoded)}</DecodedMessage>"
            f"</DecodeAuthorizationMessageResult><ResponseMetadata><RequestId>{uuid.uuid4()}"
            "</RequestId></ResponseMetadata></DecodeAuthorizationMessageResponse>"
        ).encode()
        start_response("200 OK", [("Content-Type", "text/xml")])
        return [answer]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_amibake/"):
            return self._control(environ, start_response, path)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        service, region = request_scope(environ)
        action = self._action(environ, body)
        self._note(environ, service, action, body)
        if service == "sts" and action == "DecodeAuthorizationMessage":
            return self._decode_authorization(start_response, body)
        signer = _ACCESS_KEY.search(environ.get("HTTP_AUTHORIZATION", ""))
        denied = self._denied(service, action, signer.group(1) if signer else None)
        if denied is not None:
            return self._fault(start_response, service, denied)
        if service != "sts":
            # One account whatever signs the request: credentials from an AssumeRole of a
            # role in another account would otherwise reach an empty moto account.
            environ["HTTP_X_MOTO_ACCOUNT_ID"] = self.cloud.account_id
        decision = self.cloud.faults.decide(service, action, region)
        if decision.delay:
            time.sleep(decision.delay)
        if decision.rule is not None:
            return self._fault(start_response, service, decision.rule)
        if action == "CopyImage" and self._copies_at_limit(region):
            return self._fault(start_response, service, FaultRule(action, "ResourceLimitExceeded"))
        unseen = None
        if service == "ec2":
            unseen = self.consistency.check(region, action, body, environ.get("QUERY_STRING", ""))
        if unseen is not None:  # a resource just created, not visible yet
            return self._fault(start_response, service, FaultRule(action, *unseen))
        status_headers: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status_headers[:] = [status, headers]
            return lambda data: None

        whole = contextlib.nullcontext() if self._views_serialised else self.cloud.moto_lock
        with whole:
            try:
                chunks = self.moto_app(environ, capture)
                try:
                    payload = b"".join(chunks)
                finally:
                    close = getattr(chunks, "close", None)
                    if close is not None:
                        close()
            except Exception:
                log.exception("local cloud: %s:%s failed", service, action)
                body = error_body(service, "InternalError", f"{action} failed in the local cloud")
                start_response("500 Internal Server Error", [("Content-Type", "text/xml")])
                return [body]
        status, headers = status_headers
        if service == "ec2" and status.startswith("2") and not action.startswith(_READ_ONLY):
            with self.cloud.moto_lock:  # what the call changed: saved and tracked
                if action == "CopyImage":  # copy_image_limit counts the pending ones
                    copied = _IMAGE_ID.search(payload)
                    if copied is not None:
                        self._copies.setdefault(region, set()).add(copied.group(1).decode())
                if _changes_registry(action, body):
                    self._save_region(region)
                self.consistency.created(region, action, payload)
        start_response(status, headers)
        return [payload]

    def _denied(self, service: str, action: str, access_key_id: str | None) -> FaultRule | None:
        """The signing identity's IAM policy (``LocalCloud.policy_for``) does not allow this
        call: AWS's answer (sts:GetCallerIdentity needs no permission, as on AWS)."""
        from amibake.core.iam_policy import evaluate

        policy = self.cloud.policy_for(access_key_id)
        if policy is None or not action or (service, action) == ("sts", "GetCallerIdentity"):
            return None
        if evaluate(policy, f"{service}:{action}"):
            return None
        if service == "ec2":
            code = "UnauthorizedOperation"
            message = "You are not authorized to perform this operation."
        else:
            json_api = service in ("ssm", "secretsmanager")
            code = "AccessDeniedException" if json_api else "AccessDenied"
            message = f"User is not authorized to perform: {service}:{action}"
        return FaultRule(action, error=code, message=message, status=403)

    def _copies_at_limit(self, region: str) -> bool:
        """The fault plan's ``copy_image_limit``: that many copies still pending in ``region``."""
        limit = self.cloud.faults.copy_image_limit
        if limit is None:
            return False
        from moto.ec2.models import ec2_backends

        regions = ec2_backends[self.cloud.account_id]
        if region not in regions.keys():  # noqa: SIM118
            return False
        with self.cloud.moto_lock:
            amis = regions[region].amis
            pending = {
                image_id
                for image_id in self._copies.get(region, ())
                if getattr(amis.get(image_id), "state", "") == "pending"
            }
            self._copies[region] = pending
            return len(pending) >= limit

    @staticmethod
    def _action(environ: dict[str, Any], body: bytes) -> str:
        for source in (body.decode("utf-8", "replace"), environ.get("QUERY_STRING", "")):
            values: list[str] | None = parse_qs(source).get("Action")
            if values:
                return values[0]
        target: str = environ.get("HTTP_X_AMZ_TARGET", "")
        return target.rsplit(".", 1)[-1] if target else ""

    def _save_region(self, region: str) -> None:
        from moto.ec2.models import ec2_backends

        regions = ec2_backends[self.cloud.account_id]
        # keys(), not `in regions`: that one also answers True for regions never loaded.
        if region in regions.keys():  # noqa: SIM118
            self.cloud.registry_changed(regions[region])

    @staticmethod
    def _fault(start_response: StartResponse, service: str, rule: FaultRule) -> Iterable[bytes]:
        assert rule.error is not None
        body = error_body(service, rule.error, rule.error_message)
        reason = {
            400: "Bad Request",
            403: "Forbidden",
            500: "Internal Server Error",
            503: "Service Unavailable",
        }
        status = f"{rule.http_status} {reason.get(rule.http_status, 'Error')}"
        start_response(status, [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
        return [body]

    def _control(
        self, environ: dict[str, Any], start_response: StartResponse, path: str
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            if path == "/_amibake/status" and method == "GET":
                return self._json(start_response, 200, self.cloud.status())
            if path == "/_amibake/faults" and method == "PUT":
                self.cloud.set_faults(FaultPlan.from_mapping(json.loads(raw or b"{}")))
                return self._json(start_response, 200, self.cloud.faults.as_dict())
            if path == "/_amibake/faults" and method == "DELETE":
                self.cloud.set_faults(FaultPlan())
                return self._json(start_response, 200, self.cloud.faults.as_dict())
            if path == "/_amibake/requests" and method == "GET":
                with self._requests_lock:
                    return self._json(start_response, 200, {"requests": list(self.requests)})
            if path == "/_amibake/requests" and method == "DELETE":
                with self._requests_lock:
                    self.requests.clear()
                return self._json(start_response, 200, {"requests": []})
            if path == "/_amibake/latency" and method == "PUT":
                self.cloud.set_latency(str(json.loads(raw or b"{}").get("profile", "")))
                return self._json(start_response, 200, self.cloud.latency.as_dict())
        except (AmibakeError, ValueError, AttributeError) as error:
            return self._json(start_response, 400, {"error": str(error)})
        return self._json(start_response, 404, {"error": f"no such endpoint: {method} {path}"})

    @staticmethod
    def _json(start_response: StartResponse, status: int, data: Any) -> Iterable[bytes]:
        body = json.dumps(data).encode()
        phrase = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
        start_response(
            f"{status} {phrase}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]
