"""The generated modules against `rebuff serve` over loopback, in each of the six profiles:
every error the server can raise decodes into the right class, with its code, request id and
retry decision; and every code of each catalog, as a service renders it, does too."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import PROFILES, SCENARIOS, Server, fill, indistinguishable, module, rendered, wait_ready


def check(profile: str, what: str, error: Any, code: str) -> None:
    m = module(profile)
    assert isinstance(error, m.error_class(None)), f"{profile} {what}: {error!r}"
    same = indistinguishable(profile, code)
    assert error.code in same, f"{profile} {what}: {error.code}, expected one of {sorted(same)}"
    if len(same) == 1:
        assert error.code == code, f"{profile} {what}"
    # The class is the code's, under its category's, under the base.
    assert type(error) is m.CODE_CLASSES[error.code], f"{profile} {what}: {type(error).__name__}"
    row = m._ROW_BY_CODE[error.code]
    assert isinstance(error, m.CATEGORY_CLASSES[row.category]), f"{profile} {what}"
    assert error.category == row.category
    assert error.request_id is not None and error.request_id.startswith("req_"), f"{profile} {what}: {error!r}"
    assert error.envelope == m.DIALECT or (error.envelope == "problem" and m.DIALECT in ("rebuff", "arize")), (
        f"{profile} {what}: {error.envelope}"
    )


@pytest.mark.parametrize("profile", PROFILES)
def test_every_code_as_rendered_decodes_to_its_class(profile: str) -> None:
    m = module(profile)
    for code in m.CODE_CLASSES:
        status, headers, body = rendered(profile, code)
        error = m.from_response(status, headers, body)
        check(profile, f"rendered {code}", error, code)
        assert error.request_id == "req_rendered"
        assert error.retry == m._ROW_BY_CODE[error.code].retry


def test_every_error_the_server_raises(live: tuple[str, Server, dict[str, str]]) -> None:
    profile, s, v = live
    m = module(profile)
    once = m.RetryPolicy(max_attempts=1)
    for sc in SCENARIOS["scenarios"]:
        sc = fill(sc, v)
        if sc.get("after_ready"):
            wait_ready(s, v["admin"], v["trained"])
        data = sc["body"].encode() if "body" in sc else None
        with pytest.raises(m.error_class(None)) as caught:
            m.request(
                sc["method"], s.url(sc["path"]), headers=sc.get("headers"), json=sc.get("json"), data=data,
                api_key=sc.get("key"), policy=once,
            )
        e = caught.value
        check(profile, sc["what"], e, sc["code"])
        assert e.attempts == 1
        # Nothing the server raised here is worth sending again unchanged.
        assert not e.retryable and not m.should_retry(e, sc["method"]), f"{profile} {sc['what']}: {e.retry}"
        if sc.get("fields") and profile != "dataxid":
            pointers = [f.pointer for f in e.field_errors]
            assert all(p in pointers for p in sc["fields"]), f"{profile} {sc['what']}: {pointers}"
        if profile == "dataxid" and sc["code"] == "wrong_field_type":
            assert e.param == "body.name"


@pytest.mark.parametrize("profile", PROFILES)
def test_the_rate_limit_is_retried_after_the_servers_delay(profile: str) -> None:
    m = module(profile)
    s = Server(profile, "--rate-limit", "2/minute")
    try:
        policy = m.RetryPolicy(max_attempts=1)
        for _ in range(2):
            m.request("GET", s.url("/v1/projects"), api_key=s.admin, policy=policy)
        with pytest.raises(m.RateLimitError) as caught:
            m.request("GET", s.url("/v1/projects"), api_key=s.admin, policy=policy)
        e = caught.value
        check(profile, "over the rate limit", e, "rate_limit_exceeded")
        assert e.retryable and e.retry == "retry_after"
        assert e.retry_after is not None and 0 < e.retry_after <= 60
        assert m.should_retry(e, "GET") and not m.should_retry(e, "POST")
        assert m.should_retry(e, "POST", idempotency_key=True)
        # The policy waits exactly what the server asked for.
        assert m.RetryPolicy().delay(e, retry=1, replay_safe=True) == float(e.retry_after)
    finally:
        s.close()


@pytest.mark.parametrize("profile", PROFILES)
def test_masked_server_errors_are_retried_and_keep_their_request_id(profile: str) -> None:
    m = module(profile)
    for code in ("internal_error", "database_error", "service_unavailable", "gateway_timeout"):
        error = m.from_response(*rendered(profile, code))
        check(profile, code, error, code)
        assert error.retryable and m.should_retry(error, "GET")
        assert not m.should_retry(error, "POST")
