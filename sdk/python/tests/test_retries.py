"""The retry rules against a scripted server over loopback: the delays (Retry-After in
seconds and as an HTTP-date, the RateLimit field, full-jitter backoff and its cap), the
deadline, and one Idempotency-Key across the attempts of a POST."""

from __future__ import annotations

import email.utils
import random
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import PROFILES, module, rendered
from faults import FakeTime, FaultServer

import rebuff as api

OK = (200, {"content-type": "application/json"}, b"{}")


def send(server: FaultServer, t: FakeTime, method: str = "GET", **kw: Any) -> api.Response:
    policy = kw.pop("policy", api.RetryPolicy())
    key = kw.pop("idempotency_key", None)

    def attempt(a: api.Attempt) -> api.Response:
        headers = {"Idempotency-Key": a.idempotency_key} if a.idempotency_key else {}
        return api.request(method, server.url, headers=headers, json=kw.get("json"), policy=api.RetryPolicy(max_attempts=1))

    return api.call_with_retries(
        attempt, method=method, idempotency_key=key, policy=policy, sleep=t.sleep, clock=t.clock,
        rng=kw.pop("rng", random.random),
    )


@pytest.fixture
def t() -> FakeTime:
    return FakeTime()


def scripted(*responses: tuple[int, dict[str, str], bytes]) -> Iterator[FaultServer]:
    s = FaultServer(list(responses))
    try:
        yield s
    finally:
        s.close()


def unavailable(retry_after: str | None = None, **headers: str) -> tuple[int, dict[str, str], bytes]:
    status, h, body = rendered("rebuff", "service_unavailable")
    h = {k: v for k, v in h.items() if k != "retry-after"}
    if retry_after is not None:
        h["Retry-After"] = retry_after
    h.update(headers)
    return status, h, body


def test_retry_after_in_seconds_is_waited_exactly(t: FakeTime) -> None:
    for s in scripted(unavailable("7"), OK):
        assert send(s, t).status == 200
        assert t.slept == [7.0]
        assert len(s.seen) == 2


def test_retry_after_as_an_http_date_is_waited_exactly(t: FakeTime) -> None:
    now = 1_800_000_000
    date = email.utils.formatdate(now, usegmt=True)
    later = email.utils.formatdate(now + 9, usegmt=True)
    for s in scripted(unavailable(later, Date=date), OK):
        assert send(s, t).status == 200
        assert t.slept == [9.0]


def test_the_ratelimit_fields_reset_is_a_delay(t: FakeTime) -> None:
    status, headers, body = rendered("incidents", "rate_limit_exceeded")
    headers = {k: v for k, v in headers.items() if k != "retry-after"}
    headers["RateLimit"] = '"default";r=0;t=4'
    for s in scripted((status, headers, body), OK):
        assert send(s, t).status == 200
        assert t.slept == [4.0]


def test_backoff_doubles_up_to_its_cap_without_jitter(t: FakeTime) -> None:
    policy = api.RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=1.5, jitter=False)
    for s in scripted(unavailable(), unavailable(), unavailable(), unavailable(), OK):
        assert send(s, t, policy=policy).status == 200
        assert t.slept == [0.5, 1.0, 1.5, 1.5]


def test_full_jitter_draws_below_the_ceiling(t: FakeTime) -> None:
    policy = api.RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=10.0)
    for s in scripted(unavailable(), unavailable(), unavailable(), OK):
        assert send(s, t, policy=policy, rng=lambda: 0.25).status == 200
        assert t.slept == [0.25, 0.5, 1.0]


def test_the_deadline_stops_a_wait_that_would_pass_it(t: FakeTime) -> None:
    policy = api.RetryPolicy(max_attempts=5, deadline=10.0)
    for s in scripted(unavailable("30"), OK):
        with pytest.raises(api.ServiceUnavailableError) as caught:
            send(s, t, policy=policy)
        assert caught.value.attempts == 1 and caught.value.retry_after == 30
        assert t.slept == [] and len(s.seen) == 1
    # Waits that fit are made, until the next would not.
    t2 = FakeTime()
    for s in scripted(unavailable("4"), unavailable("4"), unavailable("4"), OK):
        with pytest.raises(api.ServiceUnavailableError) as caught:
            send(s, t2, policy=policy)
        assert t2.slept == [4.0, 4.0] and caught.value.attempts == 3


def test_a_delay_longer_than_allowed_is_not_waited_for(t: FakeTime) -> None:
    for s in scripted(unavailable("600"), OK):
        with pytest.raises(api.RebuffError) as caught:
            send(s, t, policy=api.RetryPolicy(deadline=None, max_retry_after=60))
        assert caught.value.retry_after == 600 and t.slept == []


def test_a_post_keeps_one_idempotency_key_across_its_attempts(t: FakeTime) -> None:
    for s in scripted(unavailable("1"), unavailable("1"), (201, {}, b'{"id": "x"}')):
        assert send(s, t, "POST", json={"name": "a"}).status == 201
        keys = [h.get("idempotency-key") for h in s.seen]
        assert len(keys) == 3 and keys[0] and len(set(keys)) == 1, keys
    for s in scripted(unavailable("1"), OK):
        send(s, FakeTime(), "POST", json={"name": "a"})
        assert s.seen[0]["idempotency-key"] != keys[0], "each call gets its own key"
    for s in scripted(unavailable("1"), OK):
        send(s, FakeTime(), "POST", idempotency_key="mine-1")
        assert [h["idempotency-key"] for h in s.seen] == ["mine-1", "mine-1"]


def test_request_sends_the_same_key_on_every_attempt_itself() -> None:
    for s in scripted(unavailable("0"), unavailable("0"), (201, {}, b"{}")):
        res = api.request("POST", s.url, json={"name": "a"}, policy=api.RetryPolicy(max_attempts=3))
        assert res.status == 201
        keys = {h["idempotency-key"] for h in s.seen}
        assert len(s.seen) == 3 and len(keys) == 1


def test_a_post_without_a_key_is_not_retried(t: FakeTime) -> None:
    for s in scripted(unavailable("1"), OK):
        with pytest.raises(api.ServiceUnavailableError) as caught:
            send(s, t, "POST", policy=api.RetryPolicy(idempotency_keys=False))
        assert caught.value.attempts == 1 and len(s.seen) == 1


def test_errors_that_need_a_fix_are_not_retried(t: FakeTime) -> None:
    for s in scripted(rendered("rebuff", "missing_required_field", "--field", "/name=is required"), OK):
        with pytest.raises(api.MissingRequiredFieldError) as caught:
            send(s, t, "PUT")
        assert caught.value.attempts == 1 and t.slept == []
        assert [(f.pointer, f.message) for f in caught.value.field_errors] == [("/name", "is required")]


def test_a_connection_never_made_is_retried_even_for_a_post(t: FakeTime) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    calls = []

    def attempt(a: api.Attempt) -> None:
        calls.append(a)
        api.request("POST", f"http://127.0.0.1:{port}/", idempotency_key="k", policy=api.RetryPolicy(max_attempts=1))

    with pytest.raises(api.RebuffConnectionError) as caught:
        api.call_with_retries(attempt, method="POST", policy=api.RetryPolicy(idempotency_keys=False, jitter=False),
                              sleep=t.sleep, clock=t.clock)
    assert caught.value.sent is False and caught.value.attempts == 3 and len(calls) == 3
    assert t.slept == [0.5, 1.0]


def test_a_timeout_is_a_timeout_error() -> None:
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        with pytest.raises(api.RebuffTimeoutError):
            api.request("GET", url, policy=api.RetryPolicy(max_attempts=1, attempt_timeout=0.2))
    finally:
        listener.close()
    assert threading.active_count() >= 1


@pytest.mark.parametrize(
    "status,headers,body,code,retryable",
    [
        (502, {"content-type": "text/html"}, b"<html><body>Bad Gateway</body></html>", "bad_gateway", True),
        (503, {}, b"", "service_unavailable", True),
        (500, {"content-type": "application/json"}, b'{"error": {"code": "internal', "internal_error", True),
        (429, {"content-type": "text/plain", "retry-after": "3"}, b"slow down", "rate_limit_exceeded", True),
        (404, {"content-type": "application/problem+json"}, b'{"title": "Not Found", "status": 404}', "resource_not_found", False),
        (418, {}, b"[1, 2]", None, False),
    ],
)
def test_bodies_from_proxies_decode_by_status(status: int, headers: dict[str, str], body: bytes, code: str | None, retryable: bool) -> None:
    for profile in PROFILES:
        m = module(profile)
        e = m.from_response(status, headers, body)
        assert e.status == status and e.body == body
        assert e.code == code, f"{profile}: {e!r}"
        assert e.retryable is retryable
        if status == 429:
            assert e.retry_after == 3 and e.message == "slow down"


def test_decoding_never_raises_whatever_the_bytes() -> None:
    rng = random.Random(17)
    pieces = [b"{", b"}", b"[", b"]", b'"error"', b'"code"', b":", b",", b'"detail"', b"null", b"1", b'"x"', b"\xff", b" "]
    for profile in PROFILES:
        m = module(profile)
        for _ in range(400):
            body = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
            headers: Any = rng.choice([None, {}, [("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")], {"ratelimit": "x;r=0;t=a"}, 5])
            e = m.from_response(rng.choice([0, 400, 418, 503, 999]), headers, body)
            assert isinstance(e, m.error_class(None))


def test_unknown_members_are_kept_and_the_upgrade_url_is_read() -> None:
    import dataxid

    body = b'{"error": {"type": "quota_exceeded_error", "code": "quota_exceeded", "message": "Over.", "upgrade_url": "https://x.test/up"}, "request_id": "req_1", "plan": "free"}'
    e = dataxid.from_response(402, {}, body)
    assert type(e) is dataxid.QuotaExceededError
    assert e.upgrade_url == "https://x.test/up" and e.extra == {"upgrade_url": "https://x.test/up", "plan": "free"}
    assert e.request_id == "req_1" and e.category == "quota_exceeded_error"


def test_headers_come_in_any_shape() -> None:
    import email.message

    message = email.message.Message()
    message["Retry-After"] = "5"
    message["X-Request-Id"] = "req_h"
    for headers in (message, {"Retry-After": "5", "X-Request-Id": "req_h"}, [("retry-after", "5"), ("x-request-id", "req_h")]):
        e = api.from_response(503, headers, b"")
        assert (e.retry_after, e.request_id) == (5, "req_h"), type(headers)
