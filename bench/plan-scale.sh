#!/usr/bin/env bash
# Offline planning at scale: snapshots of 250 / 500 / 1,000 / 2,000 masters (one
# replica each, slots spread unevenly; bench/gen_snapshot.py), and for each the
# wall time and peak RSS (/usr/bin/time -v) of: the built-in rebalance in a dry run,
# scripts/rebalance.rhai, scripts/drain_node.rhai, join_cluster with a plan closure,
# check, a script reading topology() (bench/plan-scale/topology.rhai) and
# scripts/add_capacity.rhai (one new master with one replica, free nodes the
# snapshot does not know), and create_cluster of as many free nodes as the snapshot
# holds (bench/plan-scale/create.rhai). Prints a Markdown table. Knobs: SIZES="250 500 1000 2000".
# RUST_BACKTRACE is unset for the runs: with it, every error made along the way (an
# offline run has no node to ask, so each per-node query ends in one) captures a
# backtrace, which a user's run does not pay.
set -euo pipefail
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/redis-trib
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
entry=10.0.0.1:7000
jobs=(
  "built-in rebalance|bench/plan-scale/builtin.rhai $entry"
  "scripts/rebalance.rhai|scripts/rebalance.rhai $entry"
  "scripts/drain_node.rhai|scripts/drain_node.rhai $entry 10.0.1.1:7000"
  "join_cluster + plan closure|bench/plan-scale/join_plan.rhai $entry"
  "check|bench/plan-scale/check.rhai $entry"
  "topology() + count masters|bench/plan-scale/topology.rhai $entry"
  "scripts/add_capacity.rhai|scripts/add_capacity.rhai $entry 192.0.2.1:7000,192.0.2.2:7000"
  "create_cluster (as many nodes)|bench/plan-scale/create.rhai $entry"
)
echo "| masters (+1 replica each) | job | wall | peak RSS |"
echo "|---|---|---|---|"
for n in ${SIZES:-250 500 1000 2000}; do
  python3 bench/gen_snapshot.py "$n" > "$tmp/snap.json"
  for job in "${jobs[@]}"; do
    name=${job%%|*}
    read -r -a args <<< "${job#*|}"
    if ! /usr/bin/time -v -o "$tmp/time" "$bin" run "${args[@]}" --topology "$tmp/snap.json" \
        --max-seconds 600 > "$tmp/out" 2> "$tmp/err"; then
      echo "$name failed at $n masters:" >&2
      tail -3 "$tmp/err" >&2
      exit 1
    fi
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$tmp/time")
    rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f MB", $2 / 1024}' "$tmp/time")
    echo "| $n | $name | $wall | $rss |"
  done
done
