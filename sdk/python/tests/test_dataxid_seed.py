"""The dataxid module reproduces the published SDK exception table (seed 001, "SDK Exception
Mapping") exactly, and the reference's example `except` chain runs against
`rebuff serve --profile dataxid`."""

from __future__ import annotations

import contextlib
import io
import json

import dataxid
import pytest

from conftest import Server, raw_request, wait_ready

# | Error Code | SDK Exception |, as published.
SEED_TABLE = """
api_key_missing | dataxid.AuthenticationError
api_key_invalid | dataxid.AuthenticationError
parameter_invalid | dataxid.InvalidRequestError
model_not_found | dataxid.NotFoundError
model_not_ready | dataxid.ModelNotReadyError
quota_exceeded | dataxid.QuotaExceededError
rate_limit_exceeded | dataxid.RateLimitError
idempotency_key_in_use | dataxid.ConflictError
training_service_unavailable | dataxid.APIError
internal_error | dataxid.APIError
"""


def test_the_exception_table_is_the_published_one() -> None:
    for line in SEED_TABLE.strip().splitlines():
        code, qualified = (part.strip() for part in line.split("|"))
        module, name = qualified.split(".")
        assert module == dataxid.__name__
        cls = getattr(dataxid, name)
        assert dataxid.CODE_CLASSES[code] is cls, code  # type: ignore[index]
        # "All exceptions inherit from dataxid.DataxidError".
        assert issubclass(cls, dataxid.DataxidError) and cls is not dataxid.DataxidError
        # A response carrying the code raises exactly that class.
        body = json.dumps({"error": {"type": "x", "code": code, "message": "m"}, "request_id": "req_1"})
        assert type(dataxid.from_response(400, {}, body)) is cls, code
    # The categories of the reference's "Error Types" table, each with its class.
    assert dataxid.CATEGORY_CLASSES["api_error"] is dataxid.APIError
    assert dataxid.ModelNotReadyError.__mro__[1] is dataxid.InvalidRequestError


def example_chain(synthesize: object) -> str:
    """The reference's example, with `dataxid.synthesize(data=df)` replaced by a call."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            synthetic = synthesize()  # type: ignore[operator]  # noqa: F841
        except dataxid.AuthenticationError:
            print("Invalid API key")
        except dataxid.QuotaExceededError as e:
            print(f"Quota exceeded. Upgrade: {e.upgrade_url}")
        except dataxid.RateLimitError as e:
            print(f"Rate limited. Retry after: {e.retry_after}s")
        except dataxid.DataxidError as e:
            print(f"Error: {e}")
    return out.getvalue().strip()


def test_the_example_except_chain_runs_against_the_server() -> None:
    s = Server("dataxid")
    limited = Server("dataxid", "--rate-limit", "2/minute")
    try:
        once = dataxid.RetryPolicy(max_attempts=1)
        call = lambda method, path, key=None, body=None: lambda: dataxid.request(  # noqa: E731
            method, s.url(path), api_key=key, json=body, policy=once
        )
        assert example_chain(call("GET", "/v1/projects")) == "Invalid API key"
        assert example_chain(call("GET", "/v1/projects", "dx_test_nope")) == "Invalid API key"
        model = {"name": "m", "model_type": "ctgan", "config": {"batch_size": 32}}
        created = dataxid.request("POST", s.url("/v1/models"), api_key=s.admin, json=model).json()
        printed = example_chain(call("POST", f"/v1/models/{created['id']}/generate", s.admin, {"n_samples": 5}))
        assert printed.startswith("Error: [400 model_not_ready] "), printed
        dataxid.request("POST", s.url(f"/v1/models/{created['id']}/train"), api_key=s.admin, json={})
        wait_ready(s, s.admin, created["id"])
        printed = example_chain(call("POST", f"/v1/models/{created['id']}/generate", s.admin, {"n_samples": 5000}))
        assert printed == "Quota exceeded. Upgrade: None", printed
        # The reference's quota response names no upgrade URL; one that does is read (test_retries).
        limited_call = lambda: dataxid.request("GET", limited.url("/v1/projects"), api_key=limited.admin, policy=once)  # noqa: E731
        assert [example_chain(limited_call) for _ in range(2)] == ["", ""]
        printed = example_chain(limited_call)
        assert printed.startswith("Rate limited. Retry after: ") and printed.endswith("s"), printed
        assert int(printed.split(": ")[1][:-1]) > 0
    finally:
        s.close()
        limited.close()


def test_a_field_error_names_its_param() -> None:
    e = dataxid.from_response(
        400, {}, b'{"error": {"type": "invalid_request_error", "code": "parameter_invalid", "message": "Value error, '
        b'ensure this value is greater than 0", "doc_url": "https://docs.dataxid.com/docs/errors#parameter_invalid", '
        b'"param": "body.config.batch_size"}, "request_id": "req_abc123"}'
    )
    assert type(e) is dataxid.InvalidRequestError
    assert (e.code, e.param, e.request_id) == ("parameter_invalid", "body.config.batch_size", "req_abc123")
    assert e.doc_url == "https://docs.dataxid.com/docs/errors#parameter_invalid"
    assert [(f.pointer, f.location) for f in e.field_errors] == [("/config/batch_size", "body")]
    with pytest.raises(dataxid.DataxidError):
        raise e
    assert raw_request  # the helper module is shared
