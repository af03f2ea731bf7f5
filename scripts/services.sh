#!/usr/bin/env bash
# Makes sure the services the tests need are answering: Redis on 127.0.0.1:6379 and PostgreSQL
# on 127.0.0.1:5432. Starts whichever is not (installing it first where it is missing and
# apt-get is there), waits until it answers, and exits non-zero, saying why, if it cannot.
#
#   bash scripts/services.sh            # both
#   bash scripts/services.sh redis      # one
#
# Tests that need a service read REBUFF_TEST_REDIS_URL / REBUFF_TEST_POSTGRES_URL (defaults:
# redis://127.0.0.1:6379/ and postgres://postgres@127.0.0.1:5432/postgres). With CI=true they
# fail when it is missing; elsewhere they print a notice and skip.
set -euo pipefail

WAIT_SECONDS="${REBUFF_SERVICES_WAIT:-30}"

say() { echo "services: $*" >&2; }

# shellcheck source=lib/install-packages.sh
. "$(dirname "$0")/lib/install-packages.sh"

# wait_for NAME CHECK...: runs CHECK every 0.2 s until it succeeds or WAIT_SECONDS pass.
wait_for() {
    local name="$1"
    shift
    local tries=$((WAIT_SECONDS * 5))
    for ((i = 0; i < tries; i++)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    say "ERROR: $name did not answer within ${WAIT_SECONDS}s"
    return 1
}

redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

start_redis() {
    if ! command -v redis-server >/dev/null 2>&1; then
        install_packages redis-server redis-tools || {
            say "ERROR: redis-server is not installed and cannot be installed here"
            return 1
        }
    fi
    if redis_up; then
        return 0
    fi
    say "starting Redis on 127.0.0.1:6379"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log ||
        {
            say "ERROR: redis-server failed to start; see /var/log/redis/ci.log"
            return 1
        }
    wait_for Redis redis_up || {
        tail -n 20 /var/log/redis/ci.log >&2 || true
        return 1
    }
}

postgres_up() { pg_isready -h 127.0.0.1 -p 5432 -q; }

start_postgres() {
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        install_packages postgresql || {
            say "ERROR: PostgreSQL is not installed and cannot be installed here"
            return 1
        }
    fi
    if postgres_up; then
        return 0
    fi
    local version
    version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)"
    if [ -z "$version" ]; then
        say "ERROR: no PostgreSQL cluster under /etc/postgresql"
        return 1
    fi
    say "starting PostgreSQL $version (cluster main) on 127.0.0.1:5432"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || {
        say "ERROR: pg_ctlcluster could not start PostgreSQL $version main"
        return 1
    }
    wait_for PostgreSQL postgres_up
}

main() {
    local wanted=("$@")
    if [ ${#wanted[@]} -eq 0 ]; then
        wanted=(redis postgres)
    fi
    local failed=0
    for service in "${wanted[@]}"; do
        case "$service" in
            redis) start_redis || failed=1 ;;
            postgres) start_postgres || failed=1 ;;
            *)
                say "unknown service '$service' (redis, postgres)"
                failed=1
                ;;
        esac
    done
    if [ "$failed" -ne 0 ]; then
        say "ERROR: a service the tests need is not running"
        exit 1
    fi
    say "answering: ${wanted[*]}"
}

main "$@"
