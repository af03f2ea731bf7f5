"""An `/errors.json` comes from outside: whatever its strings hold, the generated module is
valid, imports, passes `mypy --strict`, and decodes the odd codes it lists."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from conftest import rebuff


def test_odd_strings_in_an_export_cannot_break_out_of_the_module(tmp_path: Path) -> None:
    nasty = 'q"""\\\n\'x*/ `<>` \u2028 é'
    export = {
        "name": "evil api" + nasty,
        "dialect": "incidents",
        "errors": [
            {"code": "a" + nasty, "wire_code": "A" + nasty, "status": 400, "category": "c" + nasty,
             "title": nasty, "retry": "never", "type_uri": nasty},
            {"code": "second", "status": 503, "category": "c" + nasty, "title": "t", "retry": "backoff",
             "presented_as": None, "sdk_class": "Unavailable"},
        ],
    }
    source = tmp_path / "errors.json"
    source.write_text(json.dumps(export))
    out = tmp_path / "evil_api.py"
    rebuff("docs", str(source), "--format", "python", "--out", str(out))
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(out)], capture_output=True, text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout
    spec = importlib.util.spec_from_file_location("evil_api", out)
    assert spec is not None and spec.loader is not None
    m = importlib.util.module_from_spec(spec)
    sys.modules["evil_api"] = m
    spec.loader.exec_module(m)
    assert m.API_NAME == export["name"]
    body = json.dumps({"code": "A" + nasty, "message": "m", "request_id": "req_1"})
    e = m.from_response(400, {}, body)
    assert e.code == "a" + nasty and e.wire_code == "A" + nasty and e.request_id == "req_1"
    assert type(e).__name__ == "AqXError"
    assert type(m.from_response(503, {}, "")).__name__ == "Unavailable"
