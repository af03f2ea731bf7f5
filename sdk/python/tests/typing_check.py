"""Type-checked with `mypy --strict` (not run): a misspelt code must fail type checking. Each
`type: ignore` below is required, since strict mode reports an ignore that is not needed."""

from __future__ import annotations

import dataxid
import rebuff


def branch(e: dataxid.DataxidError) -> str:
    if e.code == "quota_exceeded":
        return "upgrade"
    if e.code == "quota_exeeded":  # type: ignore[comparison-overlap]
        return "never"
    return "other"


ok: rebuff.Code = "api_key_missing"
misspelt: rebuff.Code = "api_key_mising"  # type: ignore[assignment]
category: dataxid.Category = "quota_exceeded_error"
not_a_category: dataxid.Category = "quota_error"  # type: ignore[assignment]
cls: type[dataxid.DataxidError] = dataxid.error_class("model_not_ready")
wrong = dataxid.error_class("model_not_redy")  # type: ignore[arg-type]
