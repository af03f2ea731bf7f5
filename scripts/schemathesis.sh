#!/usr/bin/env bash
# Schemathesis against `rebuff serve`'s own /openapi.json, with every check and every phase,
# and the OpenAPI document validated against the OpenAPI 3.1 schema, for each profile.
#
# CI runs it bounded (about a minute and a half once built). A longer local run:
#   SCHEMATHESIS_MAX_EXAMPLES=300 bash scripts/schemathesis.sh
#   SCHEMATHESIS_PROFILES="rebuff arize" SCHEMATHESIS_SEED=42 bash scripts/schemathesis.sh
#
# Schemathesis and openapi-spec-validator are pinned and installed into a virtual environment
# (REBUFF_VENV, default ${XDG_CACHE_HOME:-~/.cache}/rebuff-venv) on first use. Any failure,
# of a check or of the spec validation, fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
# Cargo's own default (./target), so `cargo run` and the scripts share one build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

SCHEMATHESIS_VERSION=4.32.5
VALIDATOR_VERSION=0.9.0
VENV="${REBUFF_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/rebuff-venv}"
# Test cases per operation and phase. Every profile serves the same operations; the default
# one gets the full budget, the five others a smaller one, since what differs between them is
# the error envelope, which every case checks.
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-40}"
OTHER_EXAMPLES="${SCHEMATHESIS_OTHER_EXAMPLES:-$(((MAX_EXAMPLES + 4) / 5))}"
PROFILES="${SCHEMATHESIS_PROFILES:-rebuff arize dataxid mlops incidents apikeys}"
# One worker: with several, Hypothesis calls ast.parse from several threads at once, which
# this machine's CPython 3.11.7 can fail with "SystemError: AST constructor recursion depth
# mismatch": a Runtime Error in the report that says nothing about the API.
WORKERS="${SCHEMATHESIS_WORKERS:-1}"

installed="$("$VENV/bin/schemathesis" --version 2>/dev/null || true)"
if [[ "$installed" != *"$SCHEMATHESIS_VERSION"* ]] ||
    ! "$VENV/bin/python" -c "import openapi_spec_validator" 2>/dev/null; then
    echo "Installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION" "openapi-spec-validator==$VALIDATOR_VERSION"
fi

cargo build --quiet -p rebuff-cli
BIN="$CARGO_TARGET_DIR/debug/rebuff"

WORK="$(mktemp -d)"
SERVER_PID=""
stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
cleanup() {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT

# A webhook secret for this run, given to `rebuff serve`, so the hook can sign events.
WEBHOOK_SECRET="whsec_$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"

# Hooks: what a real client does and random generation cannot.
cat >"$WORK/rebuff_hooks.py" <<'PY'
import hashlib
import hmac
import json
import os
import re
import time
import uuid

import schemathesis

VALID_KEY = re.compile(r"[!-~]{1,255}")
SECRET = os.environ["REBUFF_WEBHOOK_SECRET"].encode()


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers or {}
    # An Idempotency-Key names one request. Generated data reuses a few short values ("0",
    # "a") across different payloads, which the contract answers with 422
    # idempotency_key_reused, by design. A well-formed key is made unique, as a client would
    # make it; a malformed one is kept, so that its 400 is still tested.
    for name in list(headers):
        if name.lower() == "idempotency-key" and VALID_KEY.fullmatch(str(headers[name])):
            headers[name] = f"st-{uuid.uuid4()}"
    # Incoming webhooks are signed with the shared secret over "<t>.<body>"; a generated
    # signature can only ever be refused (401). Sign the exact bytes that are sent.
    if case.path == "/v1/webhooks/incoming" and any(n.lower() == "rebuff-signature" for n in headers):
        try:
            body = json.dumps(case.body).encode()
        except (TypeError, ValueError):
            return
        t = int(time.time())
        mac = hmac.new(SECRET, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        for name in list(headers):
            if name.lower() == "rebuff-signature":
                headers[name] = f"t={t},v1={mac}"
        kwargs["data"] = body
    case.headers = headers
    # The stateful phase follows links from GET /v1/api-keys to DELETE /v1/api-keys/{id}, and
    # revoking the key the run authenticates with would leave only 401s to test. Another
    # well-formed id takes its place (a 404).
    params = case.path_parameters or {}
    if case.method.upper() == "DELETE" and params.get("id") == os.environ["REBUFF_OWN_KEY_ID"]:
        params["id"] = "000000000000"
        case.path_parameters = params
    # A list's `cursor` is opaque: a client only passes back the `next_cursor` of a page it
    # was given. A generated one that matches the declared pattern but names no place in any
    # list is refused (400 invalid_query_parameter), rightly; it is dropped so that the case
    # tests the first page. Malformed cursors keep their 400 in the negative phase.
    query = case.query or {}
    if "cursor" in query and re.fullmatch(r"c1[0-9a-f]*", str(query["cursor"])):
        del query["cursor"]
        case.query = query
PY

# Where a check and the contract disagree, the check is configured here, with the reason.
# Each list is the check's default (2XX, 3XX, 401, 403, 404, 409, 429, 5XX; a 5XX still fails
# not_a_server_error) plus the one status the contract adds.
cat >"$WORK/schemathesis.toml" <<'TOML'
# Strings are generated as UTF-8: a JSON string with a lone surrogate escape ("\udc00") is not
# valid Unicode, and the server's JSON parser refuses it as invalid_json (400), rightly.
generation.codec = "utf-8"

# createApiKey: `expires_at` must be a real instant in the future and each of `allowed_ips` an
# address or CIDR range. JSON Schema cannot say "in the future" (nor "a real date" with a
# pattern), so a schema-valid past timestamp is a documented 422 invalid_field_value, which
# the dataxid profile presents as 400 parameter_invalid, as its reference does.
[[operations]]
include-operation-id = "createApiKey"
checks.positive_data_acceptance.expected-statuses = ["2XX", "3XX", "400", "401", "403", "404", "409", "422", "429", "5XX"]

# generate: a model that is not ready yet is model_not_ready, which the mlops reference, and
# so the catalog, puts at 400 (not 409); a stable code's status is never changed by a profile.
[[operations]]
include-operation-id = "generate"
checks.positive_data_acceptance.expected-statuses = ["2XX", "3XX", "400", "401", "403", "404", "409", "429", "5XX"]

# logout ends a cookie session (security: session only). Schemathesis authenticates with an
# API key, which logout answers with a documented 400 ("API keys are revoked instead").
[[operations]]
include-operation-id = "logout"
checks.positive_data_acceptance.expected-statuses = ["2XX", "3XX", "400", "401", "403", "404", "409", "429", "5XX"]

TOML

start_server() {
    local profile="$1"
    rm -f "$WORK"/rebuff.db*
    # Rate limits (requests, failed credentials) high enough never to throttle the run, and a
    # row quota it cannot spend: 429 and 402 are documented, but they would hide every other
    # answer.
    REBUFF_WEBHOOK_SECRET="$WEBHOOK_SECRET" "$BIN" serve --addr 127.0.0.1:0 --db "$WORK/rebuff.db" --profile "$profile" \
        --rate-limit 1000000/minute --monthly-rows 1000000000000 --training-seconds 0 \
        --auth-failure-limit 1000000/minute \
        >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    # Up to a minute: a debug build on a busy two-core machine can be slow to start.
    for _ in $(seq 1 600); do
        if grep -q "reference API (.*) on http://" "$WORK/server.log"; then
            break
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            cat "$WORK/server.log" >&2
            echo "rebuff serve exited before listening" >&2
            exit 1
        fi
        sleep 0.1
    done
    BASE="$(grep -m1 -o 'on http://[0-9.:]*' "$WORK/server.log" | cut -c4- || true)"
    KEY="$(grep -m1 -o 'rb_test_[A-Za-z0-9_]*' "$WORK/server.log" || true)"
    if [[ -z "$BASE" || -z "$KEY" ]]; then
        cat "$WORK/server.log" >&2
        echo "could not read the address and admin key from rebuff serve's output" >&2
        exit 1
    fi
}

status=0
summary=()
for profile in $PROFILES; do
    examples="$OTHER_EXAMPLES"
    [[ "$profile" == "rebuff" ]] && examples="$MAX_EXAMPLES"
    echo "=== profile $profile: $examples examples per operation"
    start_server "$profile"

    if "$VENV/bin/python" - "$BASE/openapi.json" <<'PY'; then
import json
import sys
import urllib.request

from openapi_spec_validator import OpenAPIV31SpecValidator

with urllib.request.urlopen(sys.argv[1]) as res:
    doc = json.load(res)
errors = list(OpenAPIV31SpecValidator(doc).iter_errors())
for e in errors:
    print(f"openapi.json: {e.message} at {'/'.join(map(str, e.absolute_path))}")
print(f"openapi.json: OpenAPI {doc['openapi']}, {len(doc['paths'])} paths, {len(errors)} errors")
sys.exit(1 if errors else 0)
PY
        spec="valid"
    else
        spec="INVALID"
        status=1
    fi

    seed=()
    [[ -n "${SCHEMATHESIS_SEED:-}" ]] && seed=(--seed "$SCHEMATHESIS_SEED")
    set +e
    # Run from the temporary directory: Schemathesis and Hypothesis keep state in the current
    # one (.schemathesis, .hypothesis), which would otherwise land in the work tree.
    (cd "$WORK" && PYTHONPATH="$WORK" SCHEMATHESIS_HOOKS=rebuff_hooks REBUFF_WEBHOOK_SECRET="$WEBHOOK_SECRET" \
        REBUFF_OWN_KEY_ID="$(cut -d_ -f3 <<<"$KEY")" \
        "$VENV/bin/schemathesis" --config-file "$WORK/schemathesis.toml" --no-color run "$BASE/openapi.json" \
        --checks all \
        --phases examples,coverage,fuzzing,stateful \
        --header "Authorization: Bearer $KEY" \
        --max-examples "$examples" \
        --workers "$WORKERS" \
        --request-timeout 30 \
        --generation-database none \
        --output-sanitize true \
        --report json,ndjson --report-json-path "$WORK/report.json" --report-ndjson-path "$WORK/events.ndjson" \
        "${seed[@]}") 2>&1 | tee "$WORK/schemathesis.log"
    run_status=${PIPESTATUS[0]}
    set -e
    stop_server
    if [[ "$run_status" != 0 ]]; then
        status=1
    fi
    counts="$("$VENV/bin/python" - "$WORK/report.json" "$WORK/events.ndjson" <<'PY' || echo "no report"
import json
import sys

report = json.load(open(sys.argv[1]))
checks = failed = 0
kinds = set()
for line in open(sys.argv[2]):
    for event in json.loads(line).values():
        if isinstance(event, dict) and "recorder" in event:
            for results in event["recorder"].get("checks", {}).values():
                for c in results:
                    checks += 1
                    kinds.add(c["name"])
                    failed += c["status"] == "failure"
cases = report["test_cases"]
print(
    f"{cases['generated']} cases, {checks} checks run ({len(kinds)} kinds), "
    f"{cases['unique_failures']} failures, {len(report['errors'])} errors, "
    f"{report['running_time']:.0f} s"
)
PY
)"
    rm -f "$WORK/report.json" "$WORK/events.ndjson"
    summary+=("$profile: spec $spec; $counts (exit $run_status)")
done

echo
echo "Schemathesis $SCHEMATHESIS_VERSION, all checks, all phases:"
printf '  %s\n' "${summary[@]}"
exit "$status"
