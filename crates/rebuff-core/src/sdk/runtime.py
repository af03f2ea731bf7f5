from __future__ import annotations

import builtins as _builtins
import email.utils as _email_utils
import json as _json
import random as _random
import socket as _socket
import time as _time
import urllib.error as _urllib_error
import urllib.request as _urllib_request
import uuid as _uuid
from dataclasses import dataclass as _dataclass
from typing import Any, Callable, Final, Iterable, Literal, Mapping, NamedTuple, TypeVar, Union
from typing import cast as _cast

RetryClass = Literal["never", "after_reauth", "after_fix", "backoff", "retry_after"]
"""When a request that failed may be sent again (the catalog's retry classes)."""

Envelope = Literal[
    "rebuff", "arize", "dataxid", "mlops", "incidents", "apikeys", "problem", "other_json", "text", "empty"
]
"""What an error body was recognised as: one of the six envelopes, plain RFC 9457 problem
details without a code, other JSON, a body that is not JSON, or no body."""

Headers = Union[Mapping[str, str], Iterable[tuple[str, str]], None]
"""Response headers: a mapping (any case), a list of pairs, or nothing."""

_T = TypeVar("_T")


@_dataclass(frozen=True)
class FieldError:
    """One invalid field of a request."""

    pointer: str
    """JSON Pointer to the field (``/config/batch_size``); ``""`` for the whole document."""
    location: str
    """Where the field is: ``body``, ``query``, ``path`` or ``header``."""
    reason: str
    """A machine-readable reason (``required``, ``type``, ...), or ``""``."""
    message: str
    """What is wrong with it, for humans."""


class __BASE__(_builtins.Exception):
    """Base class of every error of the __API__ API, raised by :func:`from_response`,
    :func:`request` and :func:`call_with_retries`.

    Attributes are decoded from the response and never raise: a member the body lacks is
    ``None`` (or empty).
    """

    status: int
    """The HTTP status (0 when no response was received)."""
    code: Code | None
    """The stable code, as the catalog names it; ``None`` when the response cannot be identified."""
    wire_code: str | None
    """The code as the response spelled it."""
    category: str | None
    """The error's type (``authentication_error``, ...), from the body or the catalog."""
    message: str
    """The human message (``detail`` or ``message``), or the title or reason phrase."""
    title: str | None
    """The problem type's short summary, or the status's reason phrase."""
    request_id: str | None
    """The request's id: quote it when you contact support."""
    retry_after: int | None
    """Seconds the server asked to wait (``Retry-After`` in either form, the ``RateLimit``
    field's ``t``, or the body's ``retry_after``)."""
    param: str | None
    """The parameter at fault."""
    field_errors: tuple[FieldError, ...]
    """One entry per invalid field."""
    doc_url: str | None
    """The documentation of this error (``doc_url`` or the RFC 9457 ``type``)."""
    instance: str | None
    """The RFC 9457 ``instance``."""
    upgrade_url: str | None
    """Where to upgrade the plan, when the response names it (an ``upgrade_url`` member)."""
    extra: dict[str, object]
    """Members of the body that this module does not know, kept as they were."""
    body: bytes
    """The raw response body."""
    json_body: object | None
    """The body parsed as JSON, or ``None`` when it is not JSON."""
    headers: dict[str, str]
    """The response headers, names in lower case."""
    envelope: Envelope
    """What the body was recognised as."""
    attempts: int
    """How many attempts were made before this error was raised (1 without retries)."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: Code | None = None,
        wire_code: str | None = None,
        category: str | None = None,
        title: str | None = None,
        request_id: str | None = None,
        retry_after: int | None = None,
        param: str | None = None,
        field_errors: Iterable[FieldError] = (),
        doc_url: str | None = None,
        instance: str | None = None,
        upgrade_url: str | None = None,
        extra: Mapping[str, object] | None = None,
        body: bytes = b"",
        json_body: object | None = None,
        headers: Mapping[str, str] | None = None,
        envelope: Envelope = "empty",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.wire_code = wire_code
        self.category = category
        self.message = message
        self.title = title
        self.request_id = request_id
        self.retry_after = retry_after
        self.param = param
        self.field_errors = tuple(field_errors)
        self.doc_url = doc_url
        self.instance = instance
        self.upgrade_url = upgrade_url
        self.extra = dict(extra or {})
        self.body = body
        self.json_body = json_body
        self.headers = dict(headers or {})
        self.envelope = envelope
        self.attempts = 1

    @property
    def retry(self) -> RetryClass:
        """When the same request may be sent again, from the catalog's entry for the code."""
        return retry_class(self.status, self.code)

    @property
    def retryable(self) -> bool:
        """Whether sending the identical request again may succeed (retry class ``backoff``
        or ``retry_after``)."""
        return self.retry in ("backoff", "retry_after")

    def __str__(self) -> str:
        parts = [f"{self.status}" if self.status else "no response"]
        if self.code is not None or self.wire_code is not None:
            parts.append(str(self.code if self.code is not None else self.wire_code))
        text = f"[{' '.join(parts)}] {self.message}"
        if self.request_id:
            text += f" (request_id: {self.request_id})"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )


class __STEM__ConnectionError(__BASE__):
    """No response was received: the connection could not be made, was reset, or failed."""

    sent: bool
    """Whether the request may have reached the server (``False`` when no connection was made)."""

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent

    @property
    def retry(self) -> RetryClass:
        return "backoff"


class __STEM__TimeoutError(__STEM__ConnectionError):
    """No response arrived in time (the attempt's timeout or the overall deadline)."""


class _Row(NamedTuple):
    code: str
    wire_code: str | None
    status: int
    category: str
    retry: RetryClass
    type_uri: str
    presented_as: str | None


# @@GENERATED@@


_CLASSES: Final[dict[str, type[__BASE__]]] = {code: cls for code, cls in CODE_CLASSES.items()}
_ROW_BY_CODE: Final[dict[str, _Row]] = {row.code: row for row in _ROWS}
_IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_REASONS: Final[dict[int, str]] = {
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Timeout",
    409: "Conflict", 410: "Gone", 411: "Length Required", 412: "Precondition Failed",
    413: "Content Too Large", 414: "URI Too Long", 415: "Unsupported Media Type",
    422: "Unprocessable Content", 423: "Locked", 425: "Too Early", 428: "Precondition Required",
    429: "Too Many Requests", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}


def identify(status: int, wire_code: str | None = None, type_uri: str | None = None) -> Code | None:
    """The stable code a response stands for: by the code it carries (preferring the entry
    that owns that spelling), else by a type URI only one entry has, else the generic code of
    its status. ``None`` when the catalog has nothing for that status."""
    if wire_code is not None:
        candidates = [row for row in _ROWS if row.wire_code == wire_code]
        candidates.sort(
            key=lambda r: (r.presented_as is not None, r.code.lower() != wire_code.lower(), r.status != status)
        )
        if candidates:
            return _as_code(candidates[0].code)
    if type_uri:
        matches = [row for row in _ROWS if row.type_uri == type_uri and row.presented_as is None]
        if len(matches) == 1:
            return _as_code(matches[0].code)
    fallback = _STATUS_FALLBACK.get(status)
    return None if fallback is None else _as_code(fallback)


def _as_code(code: str) -> Code | None:
    return _cast("Code", code) if code in _CLASSES else None


def retry_class(status: int, code: Code | None = None) -> RetryClass:
    """The retry class of a code, or, for a response the catalog does not know, of its
    status: 408 and 5xx (except 501) with backoff, 429 after the server's delay, else never."""
    row = _ROW_BY_CODE.get(code) if code is not None else None
    if row is not None:
        return row.retry
    if status == 429:
        return "retry_after"
    if status == 408 or (status >= 500 and status != 501):
        return "backoff"
    return "never"


def error_class(code: Code | None) -> type[__BASE__]:
    """The class raised for a stable code; the base class for ``None`` or an unknown code."""
    if code is None:
        return __BASE__
    return _CLASSES.get(code, __BASE__)


# ---- decoding ----------------------------------------------------------------------------


def _lower_headers(headers: Headers) -> dict[str, str]:
    out: dict[str, str] = {}
    if headers is None:
        return out
    try:
        # A mapping, or anything with `items()` (`http.client.HTTPMessage`, a requests or
        # httpx response's headers), else pairs.
        items = getattr(headers, "items", None)
        pairs: Iterable[Any] = items() if callable(items) else headers
        for pair in pairs:
            name, value = pair
            name = str(name).lower()
            out[name] = f"{out[name]}, {value}" if name in out else str(value)
    except (TypeError, ValueError):
        pass
    return out


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value) if value >= 0 else None


def _pointer(tokens: Iterable[object]) -> str:
    out = ""
    for token in tokens:
        text = token if isinstance(token, str) else _json.dumps(token)
        out += "/" + text.replace("~", "~0").replace("/", "~1")
    return out


_LOCATIONS: Final = ("body", "query", "path", "header", "cookie")


def _http_date(value: str) -> float | None:
    if not value:
        return None
    try:
        return _email_utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def retry_after_seconds(headers: Headers, now: float | None = None) -> int | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP-date, against the response's
    ``Date`` or else ``now``), else from the ``t`` of an IETF ``RateLimit`` field whose
    ``r`` is 0. ``None`` when the headers say nothing usable."""
    h = headers if isinstance(headers, dict) else _lower_headers(headers)
    value = h.get("retry-after", "").strip()
    if value.isdigit():
        return int(value)
    when = _http_date(value)
    if when is not None:
        base = _http_date(h.get("date", ""))
        start = base if base is not None else (_time.time() if now is None else now)
        return max(0, int(when - start + 0.999))
    for item in h.get("ratelimit", "").split(","):
        params: dict[str, str] = {}
        for part in item.split(";")[1:]:
            key, _, val = part.strip().partition("=")
            params[key] = val
        if params.get("r") == "0" and params.get("t", "").isdigit():
            return int(params["t"])
    return None


_NOT_JSON: Final = object()


class _Decoded:
    def __init__(self, status: int) -> None:
        self.status = status
        self.code: str | None = None
        self.category: str | None = None
        self.title: str | None = None
        self.message: str | None = None
        self.type_uri: str | None = None
        self.instance: str | None = None
        self.param: str | None = None
        self.fields: list[FieldError] = []
        self.request_id: str | None = None
        self.retry_after: int | None = None
        self.envelope: Envelope = "empty"
        self.extra: dict[str, object] = {}
        self.upgrade_url: str | None = None
        self.json_body: object | None = None


_PROBLEM_MEMBERS: Final = frozenset(
    {"type", "title", "status", "detail", "instance", "code", "error_code", "request_id", "param", "errors",
     "retry", "retry_after"}
)
_STRIPE_MEMBERS: Final = frozenset({"type", "code", "message", "doc_url", "param", "request_id"})
_FLAT_MEMBERS: Final = frozenset({"code", "message", "details", "request_id"})


def _decode(status: int, headers: dict[str, str], body: bytes) -> _Decoded:
    out = _Decoded(status)
    out.retry_after = retry_after_seconds(headers)
    text = body.strip()
    reason = _REASONS.get(status)
    if not text:
        out.title = reason
    else:
        try:
            value: object = _json.loads(text)
        except (ValueError, RecursionError):
            value = _NOT_JSON
        if value is _NOT_JSON:
            out.envelope = "text"
            out.title = reason
            if headers.get("content-type", "").lower().startswith("text/plain") and len(text) <= 512:
                out.message = text.decode("utf-8", "replace").strip() or None
        elif not isinstance(value, dict):
            out.envelope = "other_json"
            out.json_body = value
            out.title = reason
        else:
            out.json_body = value
            _decode_object(out, headers, value)
    if out.request_id is None:
        out.request_id = headers.get("x-request-id")
    return out


def _decode_object(out: _Decoded, headers: dict[str, str], m: dict[str, Any]) -> None:
    out.request_id = _text(m.get("request_id"))
    if out.retry_after is None:
        out.retry_after = _int(m.get("retry_after"))
    inner = m.get("error")
    if isinstance(inner, dict) and any(k in inner for k in ("code", "message", "type")):
        out.envelope = "dataxid"
        out.code = _text(inner.get("code"))
        out.category = _text(inner.get("type"))
        out.message = _text(inner.get("message"))
        out.type_uri = _text(inner.get("doc_url"))
        out.param = _text(inner.get("param"))
        if out.param and "." in out.param:
            location, _, path = out.param.partition(".")
            if location in _LOCATIONS:
                out.fields.append(FieldError(_pointer(path.split(".")), location, "", out.message or ""))
        if out.request_id is None:
            out.request_id = _text(inner.get("request_id"))
        out.extra = {k: v for k, v in inner.items() if k not in _STRIPE_MEMBERS}
        out.extra.update({k: v for k, v in m.items() if k not in ("error", "request_id")})
        return
    is_problem = headers.get("content-type", "").strip().lower().startswith("application/problem+json")
    code, error_code = _text(m.get("code")), _text(m.get("error_code"))
    title, type_uri = _text(m.get("title")), _text(m.get("type"))
    if title is not None or type_uri is not None or is_problem:
        out.title = title or _REASONS.get(out.status)
        out.type_uri = type_uri
        out.message = _text(m.get("detail"))
        out.instance = _text(m.get("instance"))
        out.param = _text(m.get("param"))
        if error_code is not None:
            out.envelope, out.code = "arize", error_code
        elif code is not None:
            out.envelope, out.code = "rebuff", code
        else:
            out.envelope = "problem"
        errors = m.get("errors")
        for item in errors if isinstance(errors, list) else []:
            if isinstance(item, dict) and isinstance(item.get("pointer"), str):
                place = _text(item.get("location")) or "body"
                out.fields.append(
                    FieldError(
                        item["pointer"],
                        place if place in _LOCATIONS else "body",
                        _text(item.get("reason")) or "",
                        _text(item.get("detail")) or "",
                    )
                )
        out.extra = {k: v for k, v in m.items() if k not in _PROBLEM_MEMBERS}
        return
    if code is None and "detail" in m:
        out.envelope = "mlops"
        out.title = _REASONS.get(out.status)
        detail = m["detail"]
        if isinstance(detail, list):
            for item in detail:
                if not isinstance(item, dict):
                    continue
                loc = item.get("loc")
                loc = loc if isinstance(loc, list) else []
                location = loc[0] if loc and loc[0] in _LOCATIONS else "body"
                out.fields.append(
                    FieldError(
                        _pointer(loc[1:] if loc and loc[0] in _LOCATIONS else loc),
                        location,
                        _text(item.get("type")) or "",
                        _text(item.get("msg")) or "",
                    )
                )
        else:
            out.message = _text(detail)
        out.extra = {k: v for k, v in m.items() if k not in ("detail", "request_id")}
        return
    if code is not None:
        out.code = code
        out.message = _text(m.get("message"))
        out.title = _REASONS.get(out.status)
        details = m.get("details")
        upper = code.upper() == code and code.lower() != code
        if isinstance(details, list) or (not upper and not isinstance(details, dict)):
            out.envelope = "apikeys"
            for item in details if isinstance(details, list) else []:
                if isinstance(item, dict) and isinstance(item.get("field"), str):
                    out.fields.append(
                        FieldError(
                            _pointer(item["field"].split(".")),
                            "body",
                            _text(item.get("code")) or "",
                            _text(item.get("message")) or "",
                        )
                    )
        else:
            out.envelope = "incidents"
            for name, item in details.items() if isinstance(details, dict) else []:
                if isinstance(item, dict) and isinstance(item.get("code"), str):
                    out.fields.append(
                        FieldError(_pointer(name.split(".")), "body", item["code"], _text(item.get("message")) or "")
                    )
        out.extra = {k: v for k, v in m.items() if k not in _FLAT_MEMBERS}
        return
    out.envelope = "other_json"
    out.title = _REASONS.get(out.status)
    out.message = _text(m.get("message")) or _text(m.get("detail"))
    out.extra = {k: v for k, v in m.items() if k not in ("message", "detail", "request_id")}


def from_response(status: int, headers: Headers, body: bytes | str | None) -> __BASE__:
    """The error a response stands for, as an instance of its code's class.

    Decodes any of the six envelopes, plain RFC 9457 problem details, other JSON and bodies
    that are not JSON (an HTML page from a proxy, an empty body). Never raises: whatever the
    bytes, the result is an error with what could be read from them.
    """
    try:
        raw = body.encode("utf-8", "replace") if isinstance(body, str) else bytes(body or b"")
        h = _lower_headers(headers)
        d = _decode(int(status), h, raw)
        code = identify(d.status, d.code, d.type_uri)
        row = _ROW_BY_CODE.get(code) if code is not None else None
        upgrade = d.extra.get("upgrade_url")
        message = d.message or d.title or _REASONS.get(d.status) or f"HTTP {d.status}"
        return error_class(code)(
            message,
            status=d.status,
            code=code,
            wire_code=d.code,
            category=d.category or (row.category if row is not None else None),
            title=d.title,
            request_id=d.request_id,
            retry_after=d.retry_after,
            param=d.param,
            field_errors=d.fields,
            doc_url=d.type_uri,
            instance=d.instance,
            upgrade_url=upgrade if isinstance(upgrade, str) else None,
            extra=d.extra,
            body=raw,
            json_body=d.json_body,
            headers=h,
            envelope=d.envelope,
        )
    except _builtins.Exception as exc:  # noqa: BLE001 - decoding must never raise
        return __BASE__(f"undecodable error response ({type(exc).__name__})", status=_int(status) or 0)


# ---- retries -----------------------------------------------------------------------------


@_dataclass(frozen=True)
class RetryPolicy:
    """When a failed request is sent again, and after how long.

    A request is retried when the error's retry class is ``backoff`` or ``retry_after`` (or
    no response arrived), the request is safe to send again (an idempotent method, or an
    ``Idempotency-Key``; a connection that was never made is always safe), attempts are
    left, the server's delay is at most ``max_retry_after``, and the wait ends before the
    deadline. Without a delay from the server, the wait is full-jitter exponential backoff:
    uniformly random between zero and ``min(max_delay, base_delay * 2 ** (retry - 1))``.
    """

    max_attempts: int = 3
    """Attempts in all, the first included."""
    base_delay: float = 0.5
    """The first backoff ceiling, in seconds."""
    max_delay: float = 20.0
    """The largest backoff ceiling, in seconds."""
    max_retry_after: float = 60.0
    """The longest server-requested delay waited for; a longer one ends the retries."""
    deadline: float | None = 60.0
    """Seconds allowed for all attempts and the waits between them; ``None`` for no limit."""
    attempt_timeout: float | None = None
    """Seconds allowed for one attempt (:func:`request` only); ``None`` leaves only the deadline."""
    jitter: bool = True
    """Randomise backoff (full jitter); ``False`` waits the whole ceiling."""
    idempotency_keys: bool = True
    """Give a ``POST`` without an ``Idempotency-Key`` one, the same on all its attempts."""

    def backoff_ceiling(self, retry: int) -> float:
        """The backoff ceiling before retry number ``retry`` (1 for the first retry)."""
        return float(min(self.max_delay, self.base_delay * 2 ** max(0, min(retry - 1, 62))))

    def delay(
        self,
        error: __BASE__,
        *,
        retry: int,
        replay_safe: bool,
        remaining: float | None = None,
        rng: Callable[[], float] = _random.random,
    ) -> float | None:
        """Seconds to wait before retry number ``retry`` after ``error``, or ``None`` when the
        request must not be sent again."""
        if isinstance(error, __STEM__ConnectionError):
            if error.sent and not replay_safe:
                return None
        elif not (replay_safe and error.retryable):
            return None
        if retry >= self.max_attempts:
            return None
        hint = error.retry_after
        if hint is not None:
            if hint > self.max_retry_after:
                return None
            wait = float(hint)
        else:
            ceiling = self.backoff_ceiling(retry)
            wait = ceiling * rng() if self.jitter else ceiling
        if remaining is not None and wait >= remaining:
            return None
        return wait


def should_retry(error: __BASE__, method: str = "GET", *, idempotency_key: bool = False) -> bool:
    """Whether ``error`` is worth sending the same request again for (ignoring attempts and
    time): it is retryable, and the method is idempotent or the request carries a key."""
    safe = method.upper() in _IDEMPOTENT_METHODS or idempotency_key
    if isinstance(error, __STEM__ConnectionError):
        return safe or not error.sent
    return safe and error.retryable


class Attempt(NamedTuple):
    """What :func:`call_with_retries` hands to each attempt of a call."""

    number: int
    """1 for the first attempt."""
    idempotency_key: str | None
    """The key to send as ``Idempotency-Key``: the same on every attempt."""
    timeout: float | None
    """Seconds this attempt may take: what is left of the deadline, capped by the policy's
    ``attempt_timeout``."""


class RetryEvent(NamedTuple):
    """One retry about to happen, reported to ``on_retry``."""

    attempt: int
    """The attempt that failed (1 for the first)."""
    delay: float
    """Seconds waited before the next attempt."""
    error: __BASE__
    """What it failed with."""


def call_with_retries(
    call: Callable[[Attempt], _T],
    *,
    method: str = "GET",
    idempotency_key: str | None = None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], object] = _time.sleep,
    clock: Callable[[], float] = _time.monotonic,
    rng: Callable[[], float] = _random.random,
    on_retry: Callable[[RetryEvent], object] | None = None,
) -> _T:
    """Runs ``call`` until it returns, retrying the errors the policy allows.

    ``call`` makes one attempt and raises a :class:`__BASE__` (as :func:`from_response` gives)
    when it fails. A ``POST`` gets an ``Idempotency-Key`` (a random UUID unless one is given),
    handed to every attempt in ``Attempt.idempotency_key``, so the server runs it once. The
    last error is raised with ``attempts`` set. ``sleep``, ``clock`` and ``rng`` are there
    for tests.
    """
    policy = policy or RetryPolicy()
    method = method.upper()
    if idempotency_key is None and method == "POST" and policy.idempotency_keys:
        idempotency_key = str(_uuid.uuid4())
    replay_safe = method in _IDEMPOTENT_METHODS or idempotency_key is not None
    start = clock()
    number = 1
    while True:
        remaining = None if policy.deadline is None else policy.deadline - (clock() - start)
        if remaining is not None and remaining <= 0:
            raise __STEM__TimeoutError("the deadline passed before the request could be sent", sent=False)
        timeout = remaining
        if policy.attempt_timeout is not None:
            timeout = policy.attempt_timeout if timeout is None else min(timeout, policy.attempt_timeout)
        try:
            return call(Attempt(number, idempotency_key, timeout))
        except __BASE__ as error:
            error.attempts = number
            remaining = None if policy.deadline is None else policy.deadline - (clock() - start)
            wait = policy.delay(error, retry=number, replay_safe=replay_safe, remaining=remaining, rng=rng)
            if wait is None:
                raise
            if on_retry is not None:
                on_retry(RetryEvent(number, wait, error))
            sleep(wait)
            number += 1


@_dataclass(frozen=True)
class Response:
    """A successful response."""

    status: int
    headers: dict[str, str]
    """Names in lower case."""
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return _json.loads(self.body)


def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    json: object | None = None,
    data: bytes | None = None,
    api_key: str | None = None,
    idempotency_key: str | None = None,
    policy: RetryPolicy | None = None,
    on_retry: Callable[[RetryEvent], object] | None = None,
) -> Response:
    """Sends one request with ``urllib`` and :func:`call_with_retries`; a 2xx or 3xx answer is
    returned, anything else is raised as its error class.

    ``json`` is sent as ``application/json``; ``api_key`` as ``Authorization: Bearer``.
    """
    base_headers = {k: v for k, v in (headers or {}).items()}
    if json is not None:
        data = _json.dumps(json).encode("utf-8")
        base_headers.setdefault("Content-Type", "application/json")
    if api_key is not None:
        base_headers["Authorization"] = f"Bearer {api_key}"
    given = next((v for k, v in base_headers.items() if k.lower() == "idempotency-key"), None)

    def attempt(a: Attempt) -> Response:
        h = dict(base_headers)
        if a.idempotency_key is not None and given is None:
            h["Idempotency-Key"] = a.idempotency_key
        req = _urllib_request.Request(url, data=data, headers=h, method=method.upper())
        try:
            with _urllib_request.urlopen(req, timeout=a.timeout) as res:
                return Response(res.status, _lower_headers(res.headers.items()), res.read())
        except _urllib_error.HTTPError as res:
            try:
                payload = res.read()
            except (OSError, ValueError):
                payload = b""
            raise from_response(res.code, res.headers.items() if res.headers else None, payload) from None
        except (_socket.timeout, _builtins.TimeoutError) as exc:
            raise __STEM__TimeoutError(f"{method} {url}: timed out ({exc})") from exc
        except _urllib_error.URLError as exc:
            refused = isinstance(exc.reason, _builtins.ConnectionRefusedError)
            if isinstance(exc.reason, (_socket.timeout, _builtins.TimeoutError)):
                raise __STEM__TimeoutError(f"{method} {url}: timed out") from exc
            raise __STEM__ConnectionError(f"{method} {url}: {exc.reason}", sent=not refused) from exc
        except (_builtins.ConnectionError, OSError) as exc:
            raise __STEM__ConnectionError(f"{method} {url}: {exc}") from exc

    return call_with_retries(
        attempt, method=method, idempotency_key=given or idempotency_key, policy=policy, on_retry=on_retry
    )
