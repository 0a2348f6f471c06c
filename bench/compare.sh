#!/usr/bin/env bash
# Benchmark: redis-trib against redis-cli --cluster on identical fresh lab clusters
# (see bench/compare.py for the jobs, the readiness definition and the knobs).
set -euo pipefail
cd "$(dirname "$0")/.."
./dev setup
cargo build --release --quiet
exec python3 bench/compare.py "$@"
