"""`mypy --strict` accepts every generated module and rejects misspelt codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_the_modules_pass_mypy_strict_and_misspelt_codes_do_not() -> None:
    modules = sorted(str(p) for p in HERE.parent.glob("*.py"))
    assert len(modules) == 6, modules
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *modules, str(HERE / "typing_check.py")],
        capture_output=True, text=True, cwd=HERE.parent, check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # And the check can fail: without its ignores, the misspelt lines are errors.
    stripped = HERE.parent / "tests" / "_typing_unignored.py"
    stripped.write_text((HERE / "typing_check.py").read_text().replace("# type: ignore", "# was ignored"))
    try:
        out = subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(stripped)],
            capture_output=True, text=True, cwd=HERE.parent, check=False,
        )
    finally:
        stripped.unlink()
    assert out.returncode == 1, out.stdout
    assert out.stdout.count("error:") == 4, out.stdout
