#!/usr/bin/env python3
"""The atomic slot-migration engine against the key engine and the C tools, on Valkey 9.1.

Tools: redis-trib --engine atomic, redis-trib --engine keys, redis-cli 7.0 --cluster,
valkey-cli 8.1 --cluster. Jobs (fresh nodes per run, timed until ready by the same
definition as bench/compare.py):

  rebalance  3 -> 4 masters with BENCH_KEYS keys (the moving phase after the new
             master is ready, as in compare.py)
  reshard    4096 slots with keys from one master to another
  replica    2048 empty slots toward a master with one replica (Valkey's SETSLOT
             waits for replica acknowledgements, one command at a time)
  stall      one big hash (BIG_FIELDS fields of BIG_VALUE bytes, ~100 MB) in a moving
             slot while a client GETs another key of the source every 10 ms: the
             longest gap between two replies
  multikey   rebalance 3 -> 4 while a client does MSET + MGET on 3 keys of one slot
             (200 hash tags): the errors it sees (TRYAGAIN...) / commands it ran

Environment: as compare.py (REPEATS, BENCH_KEYS, BENCH_BASE_PORT...), plus
REDIS_TRIB_SERVER (set by bench/atomic.sh to Valkey 9.1), VALKEY_CLI (valkey-cli 8.1),
BIG_FIELDS (1000000), BIG_VALUE (90), ATOMIC_JOBS (rebalance,reshard,replica,stall,multikey).
"""

import os
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import compare as c  # noqa: E402

VALKEY_CLI = os.environ.get("VALKEY_CLI", os.path.expanduser("~/.cache/redis-trib/servers/valkey-8.1.8/valkey-cli"))
BIG_FIELDS = int(os.environ.get("BIG_FIELDS", "1000000"))
BIG_VALUE = int(os.environ.get("BIG_VALUE", "90"))
JOBS = os.environ.get("ATOMIC_JOBS", "rebalance,reshard,replica,stall,multikey").split(",")
TOOLS = ["trib-atomic", "trib-keys", "redis-cli", "valkey-cli"]


def cli_bin(tool):
    return "redis-cli" if tool == "redis-cli" else VALKEY_CLI


def trib_move(tool, *args):
    return c.trib(*args, "--engine", "atomic" if tool == "trib-atomic" else "keys")


def job_rebalance(tool):
    with c.Lab(4) as lab:
        p = lab.ports
        c.trib("start_multi", *map(c.addr, p[:3]))
        c.ready(p[:3])
        c.load_keys(p[0])
        before = c.total_keys(p[:3])
        if tool.startswith("trib"):
            c.trib("join_no_load", c.addr(p[0]), c.addr(p[3]))
            c.ready(p)
            t1 = time.monotonic()
            trib_move(tool, "rebalance", c.addr(p[0]), "--use-empty-masters")
        else:
            c.run(cli_bin(tool), "--cluster", "add-node", c.addr(p[3]), c.addr(p[0]))
            c.ready(p)
            t1 = time.monotonic()
            c.run(cli_bin(tool), "--cluster", "rebalance", c.addr(p[0]), "--cluster-use-empty-masters")
        c.ready(p)
        elapsed = time.monotonic() - t1
        after = c.total_keys(p)
        assert before == after == c.KEYS, f"keys before {before}, after {after}"
        assert c.slot_count(p[0], c.node_id(p[3])) == 4096
        return elapsed


def job_reshard(tool):
    with c.Lab(3) as lab:
        p = lab.ports
        c.trib("start_multi", *map(c.addr, p))
        c.ready(p)
        c.load_keys(p[0])
        src, dst = c.node_id(p[0]), c.node_id(p[1])
        t0 = time.monotonic()
        if tool.startswith("trib"):
            trib_move(tool, "reshard", c.addr(p[0]), "--from", src, "--to", dst, "--slots", 4096)
        else:
            c.run(cli_bin(tool), "--cluster", "reshard", c.addr(p[0]), "--cluster-from", src, "--cluster-to", dst,
                  "--cluster-slots", 4096, "--cluster-yes")
        c.ready(p)
        elapsed = time.monotonic() - t0
        assert c.slot_count(p[0], dst) == 5461 + 4096
        assert c.total_keys(p) == c.KEYS
        return elapsed


def job_replica(tool):
    with c.Lab(3) as lab:
        p = lab.ports
        c.trib("start_multi", *map(c.addr, p[:2]))
        c.trib("replicate", c.addr(p[1]), c.addr(p[2]))
        c.ready(p)
        src, dst = c.node_id(p[0]), c.node_id(p[1])
        t0 = time.monotonic()
        if tool.startswith("trib"):
            trib_move(tool, "reshard", c.addr(p[0]), "--from", src, "--to", dst, "--slots", 2048)
        else:
            c.run(cli_bin(tool), "--cluster", "reshard", c.addr(p[0]), "--cluster-from", src, "--cluster-to", dst,
                  "--cluster-slots", 2048, "--cluster-yes")
        c.ready(p)
        return time.monotonic() - t0


def job_stall(tool):
    """Longest gap (s) between replies to GET of another key of the source, polled
    every 10 ms while the slot holding a ~100 MB hash moves."""
    with c.Lab(2) as lab:
        p = lab.ports
        c.trib("start_multi", *map(c.addr, p))
        c.ready(p)
        # Slot 0 (tag {06S}) holds the big hash; slot 100 (a key of p[0]) is read.
        big, probe = "{06S}big", "probe"
        assert c.crc16(b"06S") % 16384 == 0
        owner = p[0] if c.crc16(probe.encode()) % 16384 <= 8191 else p[1]
        c.cli(owner, "set", probe, "x")
        value = "v" * BIG_VALUE
        batch = 1000
        cmds = []
        for i in range(0, BIG_FIELDS, batch):
            args = ["HSET", big]
            for j in range(i, min(i + batch, BIG_FIELDS)):
                args += [f"f{j}", value]
            cmds.append(f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args))
        r = subprocess.run(["redis-cli", "-p", str(p[0]), "--pipe"], input="".join(cmds), capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(r.stderr)
        mem = c.cli(p[0], "memory", "usage", big).strip()
        stop = threading.Event()
        worst = [0.0]

        def reader():
            conn = c.Resp(owner)
            last = time.monotonic()
            while not stop.is_set():
                conn("get", probe)
                now = time.monotonic()
                worst[0] = max(worst[0], now - last)
                last = now
                time.sleep(0.01)
            conn.close()

        t = threading.Thread(target=reader)
        t.start()
        time.sleep(0.3)
        if tool.startswith("trib"):
            trib_move(tool, "migrate_slots", c.addr(p[0]), c.addr(p[1]), "0-99")
        else:
            src, dst = c.node_id(p[0]), c.node_id(p[1])
            c.run(cli_bin(tool), "--cluster", "reshard", c.addr(p[0]), "--cluster-from", src, "--cluster-to", dst,
                  "--cluster-slots", 100, "--cluster-yes")
        c.ready(p)
        time.sleep(0.3)
        stop.set()
        t.join()
        print(f"  stall {tool}: big hash {int(mem) / 1e6:.0f} MB, longest gap {worst[0] * 1000:.0f} ms", file=sys.stderr)
        # The probe's own 10 ms pause is not a stall.
        return max(0.0, worst[0] - 0.01)


class Client:
    """A cluster client for one traffic thread: follows MOVED (slot map updated) and
    ASK (ASKING, then the command) as cluster clients do, and returns any other
    error reply (TRYAGAIN, CROSSSLOT, ...) as an error the application sees."""

    def __init__(self, port):
        self.owner = {}
        self.default = port
        self.conns = {}

    def conn(self, port):
        if port not in self.conns:
            self.conns[port] = c.Resp(port)
        return self.conns[port]

    @staticmethod
    def call(conn, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        conn.sock.sendall(b"".join(out))
        line = conn.file.readline()
        if line[:1] == b"-":
            return None, line[1:-2].decode()
        return Resp_rest(conn, line), None

    def __call__(self, slot, *args):
        """(reply, error, redirects) of one command on keys of `slot`."""
        port = self.owner.get(slot, self.default)
        redirects = 0
        asking = False
        for _ in range(10):
            conn = self.conn(port)
            if asking:
                self.call(conn, "ASKING")
            reply, err = self.call(conn, *args)
            if err is None:
                return reply, None, redirects
            word = err.split(" ", 1)[0]
            if word in ("MOVED", "ASK"):
                redirects += 1
                port = int(err.rsplit(":", 1)[1])
                asking = word == "ASK"
                if word == "MOVED":
                    self.owner[slot] = port
                continue
            return None, err, redirects
        return None, "too many redirects", redirects

    def close(self):
        for conn in self.conns.values():
            conn.close()


def Resp_rest(conn, line):
    kind, rest = line[:1], line[1:-2]
    if kind in (b"+", b":"):
        return rest.decode()
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else conn.file.read(n + 2)[:-2].decode()
    if kind == b"*":
        return [conn.read() for _ in range(int(rest))]
    raise RuntimeError(f"unexpected reply {line!r}")


MULTIKEY_STATS = {}


def job_multikey(tool):
    """Errors a client sees doing MSET + MGET of 3 keys of one slot (hash-tagged,
    200 tags over every master) while rebalance 3 -> 4 moves slots with keys:
    TRYAGAIN (keys of the slot split between source and target mid-move) and any
    other error reply; MGET values that differ from the MSET just done count too.
    Redirections (MOVED, ASK) are followed, as cluster clients do, and counted."""
    with c.Lab(4) as lab:
        p = lab.ports
        c.trib("start_multi", *map(c.addr, p[:3]))
        c.ready(p[:3])
        c.load_keys(p[0])
        tags = [f"mk{i}" for i in range(200)]
        stop = threading.Event()
        stats = {"ops": 0, "errors": 0, "redirects": 0, "kinds": {}}

        def traffic():
            client = Client(p[0])
            n = 0
            while not stop.is_set():
                tag = tags[n % len(tags)]
                slot = c.crc16(tag.encode()) % 16384
                keys = [f"{{{tag}}}:{k}" for k in "abc"]
                val = str(n)
                for args in (["MSET"] + [x for k in keys for x in (k, val)], ["MGET"] + keys):
                    reply, err, red = client(slot, *args)
                    stats["ops"] += 1
                    stats["redirects"] += red
                    if err is None and args[0] == "MGET" and reply != [val] * 3:
                        err = "MGET read other values"
                    if err is not None:
                        stats["errors"] += 1
                        kind = err.split(" ", 1)[0]
                        stats["kinds"][kind] = stats["kinds"].get(kind, 0) + 1
                n += 1
            client.close()

        t = threading.Thread(target=traffic)
        t.start()
        time.sleep(0.3)
        if tool.startswith("trib"):
            c.trib("join_no_load", c.addr(p[0]), c.addr(p[3]))
            c.ready(p)
            trib_move(tool, "rebalance", c.addr(p[0]), "--use-empty-masters")
        else:
            c.run(cli_bin(tool), "--cluster", "add-node", c.addr(p[3]), c.addr(p[0]))
            c.ready(p)
            c.run(cli_bin(tool), "--cluster", "rebalance", c.addr(p[0]), "--cluster-use-empty-masters")
        c.ready(p)
        time.sleep(0.3)
        stop.set()
        t.join()
        assert c.slot_count(p[0], c.node_id(p[3])) == 4096
        print(f"  multikey {tool}: {stats}", file=sys.stderr)
        MULTIKEY_STATS.setdefault(tool, []).append(stats)
        return float(stats["errors"])


JOB_TABLE = {
    "multikey": (f"MSET/MGET (3 keys of one slot) during rebalance 3 -> 4, {c.KEYS} keys: errors the client saw / commands", job_multikey),
    "rebalance": (f"rebalance 3 -> 4 masters, {c.KEYS} keys x {c.VALUE} B (moving phase)", job_rebalance),
    "reshard": (f"reshard 4096 slots with keys ({c.KEYS} keys in the cluster)", job_reshard),
    "replica": ("reshard 2048 empty slots to a master with 1 replica", job_replica),
    "stall": ("big-key stall: longest gap of a reader polling every 10 ms", job_stall),
}


def main():
    server = os.environ.get("REDIS_TRIB_SERVER", "redis-server")
    version = subprocess.run([server, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"server: {version}")
    print(f"redis-cli: {c.run('redis-cli', '--version').stdout.strip()}; valkey-cli: {c.run(VALKEY_CLI, '--version').stdout.strip()}")
    print(f"machine: {os.cpu_count()} cores; repeats: {c.REPEATS}\n")
    rows = []
    for key in JOBS:
        title, fn = JOB_TABLE[key]
        times = {t: [] for t in TOOLS}
        for _ in range(c.REPEATS):
            for tool in TOOLS:
                times[tool].append(fn(tool))
        print(f"{title}: {times}", file=sys.stderr)
        rows.append((title, [statistics.median(times[t]) for t in TOOLS]))
    print("| job (Valkey 9.1, medians) | " + " | ".join(TOOLS) + " |")
    print("|---" * (len(TOOLS) + 1) + "|")
    for key, (title, meds) in zip(JOBS, rows):
        if key == "multikey":
            cells = []
            for t, m in zip(TOOLS, meds):
                ops = statistics.median(s["ops"] for s in MULTIKEY_STATS[t])
                cells.append(f"{int(m)} / {int(ops)}")
            print(f"| {title} | " + " | ".join(cells) + " |")
        else:
            print(f"| {title} | " + " | ".join(f"{m:.2f} s" for m in meds) + " |")


if __name__ == "__main__":
    try:
        main()
    finally:
        subprocess.run([c.TRIB, "--quiet", "lab", "down"], env=c.ENV, capture_output=True)
