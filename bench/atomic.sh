#!/usr/bin/env bash
# Benchmark: the atomic slot-migration engine (--engine atomic) against the key
# engine (--engine keys), redis-cli 7.0 --cluster and valkey-cli 8.1 --cluster, on
# Valkey 9.1 lab nodes (see bench/atomic.py for the jobs).
set -euo pipefail
cd "$(dirname "$0")/.."
./dev servers >/dev/null || true  # (lists the cache; its exit status is not meaningful)
SERVERS=${REDIS_TRIB_SERVERS:-${XDG_CACHE_HOME:-$HOME/.cache}/redis-trib/servers}
export REDIS_TRIB_SERVER=${REDIS_TRIB_SERVER:-$SERVERS/valkey-9.1.2/valkey-server}
export VALKEY_CLI=${VALKEY_CLI:-$SERVERS/valkey-8.1.8/valkey-cli}
[ -x "$REDIS_TRIB_SERVER" ] || { echo "no Valkey 9.1 at $REDIS_TRIB_SERVER: run ./dev servers" >&2; exit 1; }
export BENCH_BASE_PORT=${BENCH_BASE_PORT:-21700}
cargo build --release --quiet
exec python3 bench/atomic.py "$@"
