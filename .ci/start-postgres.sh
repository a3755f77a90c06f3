#!/usr/bin/env bash
# Make sure a PostgreSQL answers for the tests, and say where.
#
#   eval "$(.ci/start-postgres.sh)"     # or: source .ci/start-postgres.sh
#
# 1. Something already answers on 127.0.0.1:5432 → use it.
# 2. Else start the Debian cluster: pg_ctlcluster --skip-systemctl-redirect <version> main start.
# 3. Else start an embedded server (pgserver from the venv) in .rrief/ci-pgdata, Unix socket only.
# Prints `export RRIEF_TEST_DATABASE_URL=...` and `export RRIEF_REQUIRE_POSTGRES=1` on stdout
# (exported directly when sourced); progress goes to stderr.
set -euo pipefail

_rrief_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_rrief_py="${_rrief_root}/.venv/bin/python"
_rrief_url="${RRIEF_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"

_rrief_say() { echo "start-postgres: $*" >&2; }

_rrief_answers() {  # can we run a query with this URL?
    "${_rrief_py}" - "$1" >/dev/null 2>&1 <<'PY'
import sys
from sqlalchemy import create_engine, text
engine = create_engine(sys.argv[1])
with engine.connect() as conn:
    conn.execute(text("SELECT 1"))
PY
}

_rrief_start() {
    if _rrief_answers "${_rrief_url}"; then
        _rrief_say "PostgreSQL already answers"
        return 0
    fi
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
        local version
        for version in $(ls /etc/postgresql); do
            _rrief_say "starting cluster ${version}/main with pg_ctlcluster"
            pg_ctlcluster --skip-systemctl-redirect "${version}" main start >&2 || true
        done
        local _
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            if _rrief_answers "${_rrief_url}"; then
                _rrief_say "cluster is up"
                return 0
            fi
            sleep 1
        done
        _rrief_say "the cluster did not answer at ${_rrief_url}; falling back to pgserver"
    fi
    _rrief_say "starting an embedded PostgreSQL (pgserver) in .rrief/ci-pgdata"
    _rrief_url="$(cd "${_rrief_root}" && "${_rrief_py}" -W ignore - <<'PY'
from extractors.warehouse.embedded import start_embedded
# cleanup_mode=None: keep serving after this process exits, for the test run that follows.
print(start_embedded(".rrief/ci-pgdata", database="test", cleanup_mode=None))
PY
)"
    _rrief_answers "${_rrief_url}"
}

_rrief_start
if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    export RRIEF_TEST_DATABASE_URL="${_rrief_url}" RRIEF_REQUIRE_POSTGRES=1
    set +euo pipefail
else
    printf 'export RRIEF_TEST_DATABASE_URL=%q\nexport RRIEF_REQUIRE_POSTGRES=1\n' "${_rrief_url}"
fi
