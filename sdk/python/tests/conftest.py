"""What the tests of the generated Python modules share: the `rebuff` binary, `rebuff serve`
in a profile with the keys and accounts the scenarios need, and rendered error responses.

The modules under test are the checked-in ones in `sdk/python/` (the freshness test keeps
them equal to what the generator writes); `REBUFF_BIN` names the binary (default: the debug
build in `$CARGO_TARGET_DIR`).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import pytest

SDK = Path(__file__).resolve().parents[2]
REPO = SDK.parent
sys.path.insert(0, str(SDK / "python"))

PROFILES = ["rebuff", "arize", "dataxid", "mlops", "incidents", "apikeys"]
SCENARIOS: dict[str, Any] = json.loads((SDK / "scenarios.json").read_text())


def rebuff_bin() -> str:
    given = os.environ.get("REBUFF_BIN")
    if given:
        return given
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache" / "rebuff-target"))
    return str(Path(target) / "debug" / "rebuff")


def rebuff(*args: str, stdin: bytes | None = None) -> str:
    out = subprocess.run([rebuff_bin(), *args], input=stdin, capture_output=True, check=False)
    if out.returncode != 0:
        raise AssertionError(f"rebuff {' '.join(args)}: {out.stderr.decode()}")
    return out.stdout.decode()


def module(profile: str) -> ModuleType:
    return importlib.import_module(profile)


class Server:
    """`rebuff serve --profile P` on an ephemeral port, over a fresh SQLite file."""

    def __init__(self, profile: str, *extra: str) -> None:
        self.profile = profile
        self.dir = tempfile.TemporaryDirectory(prefix=f"rebuff-sdk-{profile}-")
        self.db = str(Path(self.dir.name) / "api.db")
        self.proc = subprocess.Popen(
            [rebuff_bin(), "serve", "--addr", "127.0.0.1:0", "--db", self.db, "--profile", profile,
             "--training-seconds", "1", "--monthly-rows", "1000", "--body-limit", "65536", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"},
        )
        assert self.proc.stdout is not None
        lines = []
        for raw in self.proc.stdout:
            line = raw.decode()
            lines.append(line)
            if " on http://" in line:
                break
        text = "".join(lines)
        self.base = "http://" + text.split("on http://", 1)[1].split()[0]
        self.admin = next(w for w in text.split() if w.startswith("rb_test_"))
        self.keys: dict[str, str] = {"admin": self.admin}

    def key(self, *args: str) -> tuple[str, str]:
        made = json.loads(rebuff("keys", "create", "--db", self.db, "--org", "demo", "--json", *args))
        return made["id"], made["key"]

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.dir.cleanup()


def raw_request(method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request with no error handling of the module under test."""
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, {k.lower(): v for k, v in res.headers.items()}, res.read()
    except urllib.error.HTTPError as res:
        return res.code, {k.lower(): v for k, v in res.headers.items()}, res.read()


def prepared(profile: str) -> tuple[Server, dict[str, str]]:
    """A server with every key, account and resource the scenarios refer to."""
    s = Server(profile)
    v: dict[str, str] = {"admin": s.admin}
    v["reader"] = s.key("--scope", "read")[1]
    revoked_id, v["revoked"] = s.key("--scope", "read")
    rebuff("keys", "revoke", "--db", s.db, "--org", "demo", revoked_id)
    v["expired"] = s.key("--scope", "read", "--expires-at", "2001-09-09T01:46:40Z")[1]
    v["fenced"] = s.key("--scope", "read", "--allow-ip", "10.0.0.0/8")[1]
    user = SCENARIOS["setup_user"]
    password = user["password"].encode()
    rebuff("users", "create", "--db", s.db, "--org", "demo", "--email", user["email"], stdin=password)
    rebuff("users", "create", "--db", s.db, "--org", "demo", "--email", user["disabled_email"], "--disabled", stdin=password)
    auth = {"authorization": f"Bearer {s.admin}", "content-type": "application/json"}
    post = lambda path, body, extra={}: raw_request("POST", s.url(path), {**auth, **extra}, json.dumps(body).encode())  # noqa: E731
    status, headers, _ = raw_request(
        "POST", s.url("/v1/auth/login"), {"content-type": "application/json"},
        json.dumps({"email": user["email"], "password": user["password"]}).encode(),
    )
    assert status == 200, status
    v["cookie"] = headers["set-cookie"].split(";")[0]
    assert post("/v1/projects", {"name": "alpha"})[0] == 201
    status, _, body = post("/v1/projects", {"name": "beta"})
    v["project"] = json.loads(body)["id"]
    model = {"name": "m", "model_type": "ctgan", "config": {"batch_size": 32}}
    v["model"] = json.loads(post("/v1/models", model)[2])["id"]
    v["trained"] = json.loads(post("/v1/models", model)[2])["id"]
    assert post(f"/v1/models/{v['trained']}/train", {})[0] in (200, 201, 202)
    assert post("/v1/projects", {"name": "idem"}, {"idempotency-key": "k-1"})[0] == 201
    v["big"] = json.dumps({"name": "x" * (100 * 1024)})
    v["long_key"] = "k" * 300
    return s, v


def wait_ready(s: Server, admin: str, model: str) -> None:
    for _ in range(200):
        _, _, body = raw_request("GET", s.url(f"/v1/models/{model}"), {"authorization": f"Bearer {admin}"})
        if json.loads(body).get("status") == "ready":
            return
        time.sleep(0.05)
    raise AssertionError("the model never became ready")


def fill(value: Any, v: dict[str, str]) -> Any:
    """Replaces `$name` strings (and `$name` inside paths) with the prepared values."""
    if isinstance(value, str):
        if value.startswith("$") and value[1:] in v:
            return v[value[1:]]
        for name, val in v.items():
            value = value.replace(f"/${name}/", f"/{val}/")
        return value
    if isinstance(value, dict):
        return {k: fill(x, v) for k, x in value.items()}
    if isinstance(value, list):
        return [fill(x, v) for x in value]
    return value


_RENDERED: dict[tuple[str, str], tuple[int, dict[str, str], bytes]] = {}


def rendered(profile: str, code: str, *extra: str) -> tuple[int, dict[str, str], bytes]:
    """What a service of the profile answers for `code`: `rebuff render` output, parsed."""
    key = (profile, code + " ".join(extra))
    if key not in _RENDERED:
        text = rebuff("render", "--profile", profile, "--code", code, "--request-id", "req_rendered", *extra)
        head, _, body = text.partition("\n\n")
        lines = head.splitlines()
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        _RENDERED[key] = (status, headers, body.encode())
    return _RENDERED[key]


def indistinguishable(profile: str, code: str) -> set[str]:
    """The codes a client of the profile cannot tell from `code`: same status, wire code and
    documentation URI when rendered."""
    m = module(profile)
    def form(c: str) -> tuple[int, str | None, str | None]:
        e = m.from_response(*rendered(profile, c))
        return e.status, e.wire_code, e.doc_url
    target = form(code)
    return {c for c in m.CODE_CLASSES if form(c) == target}


@pytest.fixture(scope="session", params=PROFILES)
def live(request: pytest.FixtureRequest) -> Iterator[tuple[str, Server, dict[str, str]]]:
    s, v = prepared(request.param)
    try:
        yield request.param, s, v
    finally:
        s.close()
