#!/usr/bin/env python3
"""redis-trib against redis-cli --cluster, on identical fresh lab clusters.

Each job runs REPEATS times per tool on new nodes and is timed from its start until
the cluster is ready for the next operation, by one definition for both tools:
`redis-cli --cluster check` reports no error or warning, every node knows every
node, every node says cluster_state:ok, and every replica's link is up. Key counts
are checked before and after. Prints medians and the ratio (redis-cli / redis-trib).

Environment: REDIS_TRIB (binary, default target/release/redis-trib), REPEATS (3),
BENCH_KEYS (200000), BENCH_VALUE (100 bytes), BENCH_BASE_PORT (7600),
BENCH_NODE_TIMEOUT (cluster-node-timeout ms, 3000), BENCH_JOBS (rebalance,reshard,
create3,create6; also `create6r1` and `scale`, see below), BENCH_SCALE_MASTERS (masters
of the scale scenario, each with one replica; 50), BENCH_SCALE_BASE_PORT (10000: the
nodes' ports and bus ports, +10000, must stay below the kernel's ephemeral range).

The scale scenario, per tool on its own fresh nodes (up 3 s before the timed
window): create M masters + M replicas, then check, info and call (DBSIZE on every
node) on the ready cluster, then KEYS keys loaded, M/10 empty masters added and the
cluster rebalanced onto them (add-node + rebalance, until ready), keys verified.

create6r1: 6 nodes, `--replicas 1`, on servers started here rather than by the lab,
with Redis's default repl-diskless-sync-delay (5 s; lab nodes start with 0), up at
least 3 s before the timed window, timed until ready (every replica's link up).
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TRIB = os.environ.get("REDIS_TRIB", "target/release/redis-trib")
REPEATS = int(os.environ.get("REPEATS", "3"))
KEYS = int(os.environ.get("BENCH_KEYS", "200000"))
VALUE = int(os.environ.get("BENCH_VALUE", "100"))
BASE = int(os.environ.get("BENCH_BASE_PORT", "7600"))
NODE_TIMEOUT = os.environ.get("BENCH_NODE_TIMEOUT", "3000")
JOBS = os.environ.get("BENCH_JOBS", "rebalance,reshard,create3,create6").split(",")
LAB_DIR = tempfile.mkdtemp(prefix="redis-trib-bench-")
# Rebalance job: the moving phase alone (after the new master is ready).
PHASES = {}
ENV = {**os.environ, "REDIS_TRIB_LAB_DIR": LAB_DIR, "NO_COLOR": "1"}


def run(*args, check=True):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=ENV)
    if check and r.returncode != 0:
        sys.exit(f"command failed: {' '.join(map(str, args))}\n{r.stdout}\n{r.stderr}")
    return r


def trib(*args):
    return run(TRIB, "--quiet", *args)


def cli(port, *args):
    return run("redis-cli", "-p", port, *args).stdout


def addr(p):
    return f"127.0.0.1:{p}"


class Lab:
    def __init__(self, n):
        self.ports = [BASE + i for i in range(n)]

    def __enter__(self):
        trib("lab", "up", len(self.ports), "--base-port", BASE, "--node-timeout", NODE_TIMEOUT)
        # Both tools get nodes past Redis's 2 s post-start writable delay.
        time.sleep(2.5)
        return self

    def __exit__(self, *exc):
        trib("lab", "down")


class Resp:
    """A minimal RESP client, so polling a node costs a round trip, not a process."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.file = self.sock.makefile("rb")

    def __call__(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self.read()

    def read(self):
        line = self.file.readline()
        kind, rest = line[:1], line[1:-2]
        if kind in (b"+", b"-", b":"):
            return rest.decode()
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.file.read(n + 2)[:-2].decode()
        if kind == b"*":
            return [self.read() for _ in range(int(rest))]
        raise RuntimeError(f"unexpected reply {line!r}")

    def close(self):
        self.sock.close()


def node_problem(conn, port, count):
    """Why one node is not ready yet, or None."""
    if "cluster_state:ok" not in conn("cluster", "info"):
        return f"{port} is not ok"
    if len(conn("cluster", "nodes").strip().splitlines()) != count:
        return f"{port} does not know every node"
    repl = conn("info", "replication")
    if "role:slave" in repl and "master_link_status:up" not in repl:
        return f"{port} replica link down"
    return None


def ready(ports, timeout=120):
    """Polls until the cluster of `ports` is ready for the next operation."""
    deadline = time.monotonic() + timeout
    conns = {p: Resp(p) for p in ports}
    try:
        while True:
            problem = next(filter(None, (node_problem(conns[p], p, len(ports)) for p in ports)), None)
            if problem is None:
                check = run("redis-cli", "--cluster", "check", addr(ports[0]), check=False).stdout
                if "[ERR]" in check or "[WARNING]" in check or "All 16384 slots covered" not in check:
                    problem = "redis-cli --cluster check is not clean"
            if problem is None:
                return
            if time.monotonic() > deadline:
                sys.exit(f"cluster not ready after {timeout}s: {problem}")
            time.sleep(0.01)
    finally:
        for c in conns.values():
            c.close()


def crc16(data, table=[]):
    if not table:
        for i in range(256):
            c = i << 8
            for _ in range(8):
                c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
            table.append(c & 0xFFFF)
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ b) & 0xFF]
    return crc


def load_keys(entry):
    """Writes KEYS keys of VALUE bytes, each straight to its slot's owner."""
    topo = json.loads(trib("list", addr(entry), "--json").stdout)
    owner = {}
    for n in topo["nodes"]:
        for r in n["assigned_slots"]:
            a, _, b = r.partition("-")
            for s in range(int(a), int(b or a) + 1):
                owner[s] = n["port"]
    value = "v" * VALUE
    per_port = {}
    for i in range(KEYS):
        k = f"bench:{i}"
        per_port.setdefault(owner[crc16(k.encode()) % 16384], []).append(
            f"*3\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n${VALUE}\r\n{value}\r\n"
        )
    for port, cmds in per_port.items():
        p = subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input="".join(cmds), capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(p.stderr)


def total_keys(ports):
    return sum(int(cli(p, "dbsize").strip()) for p in ports if "role:master" in cli(p, "info", "replication"))


def slot_count(entry, nid):
    topo = json.loads(trib("list", addr(entry), "--json").stdout)
    node = [n for n in topo["nodes"] if n["node_id"] == nid][0]
    return sum(int(r.partition("-")[2] or r) - int(r.partition("-")[0]) + 1 for r in node["assigned_slots"])


def node_id(port):
    return cli(port, "cluster", "myid").strip()


def job_rebalance(tool):
    with Lab(4) as lab:
        p = lab.ports
        trib("start_multi", *map(addr, p[:3]))
        ready(p[:3])
        load_keys(p[0])
        before = total_keys(p[:3])
        t0 = time.monotonic()
        if tool == "redis-trib":
            trib("join_no_load", addr(p[0]), addr(p[3]))
            t1 = time.monotonic()
            trib("rebalance", addr(p[0]), "--use-empty-masters")
        else:
            run("redis-cli", "--cluster", "add-node", addr(p[3]), addr(p[0]))
            ready(p)
            t1 = time.monotonic()
            run("redis-cli", "--cluster", "rebalance", addr(p[0]), "--cluster-use-empty-masters")
        ready(p)
        elapsed = time.monotonic() - t0
        PHASES.setdefault(tool, []).append(time.monotonic() - t1)
        after = total_keys(p)
        assert before == after == KEYS, f"keys before {before}, after {after}, expected {KEYS}"
        held = slot_count(p[0], node_id(p[3]))
        assert held == 4096, f"the new master holds {held} slots"
        return elapsed


def job_reshard(tool):
    with Lab(3) as lab:
        p = lab.ports
        trib("start_multi", *map(addr, p))
        ready(p)
        src, dst = node_id(p[0]), node_id(p[1])
        t0 = time.monotonic()
        if tool == "redis-trib":
            trib("reshard", addr(p[0]), "--from", src, "--to", dst, "--slots", 4096)
        else:
            run("redis-cli", "--cluster", "reshard", addr(p[0]), "--cluster-from", src, "--cluster-to", dst,
                "--cluster-slots", 4096, "--cluster-yes")
        ready(p)
        elapsed = time.monotonic() - t0
        count = slot_count(p[0], dst)
        assert count == 5461 + 4096, f"destination holds {count} slots"
        return elapsed


def job_create(tool, n, replicas):
    with Lab(n) as lab:
        p = lab.ports
        t0 = time.monotonic()
        if tool == "redis-trib":
            trib("create", *map(addr, p), "--replicas", replicas)
        else:
            run("redis-cli", "--cluster", "create", *map(addr, p), "--cluster-replicas", replicas, "--cluster-yes")
        ready(p)
        return time.monotonic() - t0


class PlainNodes:
    """Cluster-enabled redis-server processes started here, with the server's own
    defaults where the lab sets values (repl-diskless-sync-delay above all), stopped
    by pid."""

    def __init__(self, n):
        self.ports = [BASE + i for i in range(n)]
        self.procs = []

    def __enter__(self):
        try:
            for p in self.ports:
                d = tempfile.mkdtemp(prefix=f"node-{p}-", dir=LAB_DIR)
                self.procs.append(subprocess.Popen(
                    ["redis-server", "--port", str(p), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                     "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", NODE_TIMEOUT,
                     "--dir", d, "--save", "", "--appendonly", "no", "--daemonize", "no",
                     "--logfile", "redis.log", "--protected-mode", "no"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            started = time.monotonic()
            deadline = started + 10
            for p in self.ports:
                while True:
                    try:
                        c = Resp(p)
                        ok = c("ping") == "PONG"
                        c.close()
                        if ok:
                            break
                    except OSError:
                        pass
                    if time.monotonic() > deadline:
                        sys.exit(f"node {p} did not start")
                    time.sleep(0.02)
            delay = cli(self.ports[0], "config", "get", "repl-diskless-sync-delay").split()
            assert delay[-1] == "5", f"repl-diskless-sync-delay is {delay}, not Redis's default 5"
            # Both tools get nodes up at least 3 s (past the 2 s post-start writable delay).
            time.sleep(max(0.0, 3.0 - (time.monotonic() - started)))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def job_create_default_delay(tool):
    with PlainNodes(6) as nodes:
        p = nodes.ports
        t0 = time.monotonic()
        if tool == "redis-trib":
            trib("create", *map(addr, p), "--replicas", 1)
        else:
            run("redis-cli", "--cluster", "create", *map(addr, p), "--cluster-replicas", 1, "--cluster-yes")
        ready(p)
        elapsed = time.monotonic() - t0
        for port in p:
            delay = cli(port, "config", "get", "repl-diskless-sync-delay").split()
            assert delay[-1] == "5", f"{port}: repl-diskless-sync-delay left at {delay[-1]}"
        return elapsed


SCALE_M = int(os.environ.get("BENCH_SCALE_MASTERS", "50"))
SCALE_BASE = int(os.environ.get("BENCH_SCALE_BASE_PORT", "10000"))


def timed(*args):
    t0 = time.monotonic()
    run(*args)
    return time.monotonic() - t0


def job_scale(tool):
    """Times of one tool on the scale scenario, by phase."""
    global BASE
    m, new = SCALE_M, max(1, SCALE_M // 10)
    saved, BASE = BASE, SCALE_BASE
    try:
        with Lab(2 * m + new) as lab:
            time.sleep(0.5)
            p = lab.ports
            members, extra = p[: 2 * m], p[2 * m :]
            out = {}
            t0 = time.monotonic()
            if tool == "redis-trib":
                trib("create", *map(addr, members), "--replicas", 1)
            else:
                run("redis-cli", "--cluster", "create", *map(addr, members), "--cluster-replicas", 1,
                    "--cluster-yes")
            ready(members, timeout=300)
            out["create"] = time.monotonic() - t0
            e = addr(members[0])
            if tool == "redis-trib":
                out["check"] = timed(TRIB, "--quiet", "check", e)
                out["info"] = timed(TRIB, "--quiet", "info", e)
                out["call"] = timed(TRIB, "--quiet", "call", e, "DBSIZE")
            else:
                out["check"] = timed("redis-cli", "--cluster", "check", e)
                out["info"] = timed("redis-cli", "--cluster", "info", e)
                out["call"] = timed("redis-cli", "--cluster", "call", e, "DBSIZE")
            load_keys(members[0])
            before = total_keys(members)
            t0 = time.monotonic()
            if tool == "redis-trib":
                # Every new node in one join (one wait for all).
                trib("join_no_load", e, *map(addr, extra))
                trib("rebalance", e, "--use-empty-masters")
            else:
                # add-node refuses a cluster that does not agree yet: each waits.
                for i, x in enumerate(extra):
                    run("redis-cli", "--cluster", "add-node", addr(x), e)
                    ready(members + extra[: i + 1], timeout=300)
                run("redis-cli", "--cluster", "rebalance", e, "--cluster-use-empty-masters")
            ready(p, timeout=300)
            out["rebalance"] = time.monotonic() - t0
            after = total_keys(p)
            assert before == after == KEYS, f"keys before {before}, after {after}, expected {KEYS}"
            for x in extra:
                assert slot_count(members[0], node_id(x)) > 0, f"{x} got no slots"
            return out
    finally:
        BASE = saved


def scale_rows():
    m, new = SCALE_M, max(1, SCALE_M // 10)
    times = {"redis-trib": [], "redis-cli": []}
    for _ in range(REPEATS):
        for tool in times:
            times[tool].append(job_scale(tool))
    print(f"scale: {times}; load average {load()}", file=sys.stderr)
    titles = {
        "create": f"scale: create {m} masters + {m} replicas",
        "check": "scale: check",
        "info": "scale: info",
        "call": "scale: call DBSIZE (every node)",
        "rebalance": f"scale: add {new} empty masters + rebalance, {KEYS} keys",
    }
    rows = []
    for k, title in titles.items():
        a = statistics.median(t[k] for t in times["redis-trib"])
        b = statistics.median(t[k] for t in times["redis-cli"])
        rows.append((title, a, b, b / a))
    return rows


JOB_TABLE = {
    "rebalance": (f"rebalance 3 -> 4 masters, {KEYS} keys x {VALUE} B", job_rebalance),
    "reshard": ("reshard 4096 empty slots", job_reshard),
    "create3": ("create 3 masters", lambda t: job_create(t, 3, 0)),
    "create6": ("create 6 nodes, 1 replica each", lambda t: job_create(t, 6, 1)),
    "create6r1": ("create 6 nodes, 1 replica each, default repl-diskless-sync-delay (5 s)",
                  job_create_default_delay),
}


def load():
    """The 1, 5 and 15 minute load averages (the machine may be shared)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    print(f"redis-trib: {run(TRIB, '--version').stdout.strip()}; redis-cli: {run('redis-cli', '--version').stdout.strip()}")
    print(f"machine: {os.cpu_count()} cores; repeats: {REPEATS}; cluster-node-timeout: {NODE_TIMEOUT} ms; "
          f"load average at start: {load()}\n")
    rows = []
    for key in JOBS:
        if key == "scale":
            rows.extend(scale_rows())
            continue
        title, fn = JOB_TABLE[key]
        times = {"redis-trib": [], "redis-cli": []}
        for _ in range(REPEATS):
            for tool in times:
                times[tool].append(fn(tool))
        med = {t: statistics.median(v) for t, v in times.items()}
        rows.append((title, med["redis-trib"], med["redis-cli"], med["redis-cli"] / med["redis-trib"]))
        if key == "rebalance":
            ph = {t: statistics.median(v) for t, v in PHASES.items()}
            rows.append(("  of which moving slots (new master ready)", ph["redis-trib"], ph["redis-cli"],
                         ph["redis-cli"] / ph["redis-trib"]))
        print(f"{title}: redis-trib {times['redis-trib']}, redis-cli {times['redis-cli']}; load average {load()}",
              file=sys.stderr)
    print("| job | redis-trib (median) | redis-cli --cluster (median) | speed-up |")
    print("|---|---|---|---|")
    for title, a, b, ratio in rows:
        print(f"| {title} | {a:.3f} s | {b:.3f} s | {ratio:.1f}x |")


if __name__ == "__main__":
    try:
        main()
    finally:
        subprocess.run([TRIB, "--quiet", "lab", "down"], env=ENV, capture_output=True)
