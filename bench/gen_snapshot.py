#!/usr/bin/env python3
"""Writes an offline topology snapshot (the `redis-trib list --json` document) of
MASTERS masters, each with REPLICAS replicas, the 16384 slots spread unevenly
(master i weighs 1 + (i * 7919) % 5), as `bench/plan-scale.sh` uses them.

usage: gen_snapshot.py MASTERS [REPLICAS] > snapshot.json
"""
import hashlib
import json
import sys


def node_id(i):
    return hashlib.sha1(str(i).encode()).hexdigest()


def main():
    masters = int(sys.argv[1])
    replicas = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    if masters < 1 or masters > 16384:
        sys.exit("MASTERS must be 1..16384")
    weights = [1 + (i * 7919) % 5 for i in range(masters)]
    total = sum(weights)
    counts = [16384 * w // total for w in weights]
    for i in range(16384 - sum(counts)):
        counts[i % masters] += 1
    nodes, keys = [], {}
    first = 0
    for i in range(masters):
        mid = node_id(i)
        host = f"10.{i // 250 % 250}.{i % 250}.{1 + i // 62500}"
        last = first + counts[i] - 1
        slots = [] if counts[i] == 0 else [f"{first}-{last}" if last > first else str(first)]
        first = last + 1
        nodes.append({
            "node_id": mid, "host": host, "port": 7000, "cport": 17000,
            "hostname": None, "flags": ["master"], "role_in_cluster": "master",
            "master_id": None, "ping_sent": 0, "pong_recv": 0, "config_epoch": i + 1,
            "connected": True, "assigned_slots": slots,
            "slots_migrating": [], "slots_importing": [],
        })
        keys[mid] = counts[i] * 10
        for r in range(replicas):
            rid = node_id(f"{i}/{r}")
            nodes.append({
                "node_id": rid, "host": host, "port": 7001 + r, "cport": 17001 + r,
                "hostname": None, "flags": ["slave"], "role_in_cluster": "slave",
                "master_id": mid, "ping_sent": 0, "pong_recv": 0, "config_epoch": i + 1,
                "connected": True, "assigned_slots": [],
                "slots_migrating": [], "slots_importing": [],
            })
            keys[rid] = counts[i] * 10
    json.dump({"entry_id": node_id(0), "nodes": nodes, "keys": keys,
               "states": {}, "unreachable": {}}, sys.stdout)


if __name__ == "__main__":
    main()
