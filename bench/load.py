#!/usr/bin/env python3
"""Load benchmark of the daemon on loopback (issue: the daemon).

    cargo build --release --workspace
    python3 bench/load.py                       # both parts
    python3 bench/load.py --skip-exports        # only the status-request part
    python3 bench/load.py --skip-status --skip-exports --event-streams 100

Two parts, each against a fresh `export-host serve` on 127.0.0.1 (SQLite and
local files in a temporary DATA_DIR, the csv and json plugins from
target/release):

1. Status requests: `wrk` (Debian package `wrk`) sends `GET /v1/exports/{id}`
   with a bearer token over --connections connections for --seconds seconds,
   and then `GET /healthz` the same way. /healthz touches neither the token
   table nor the records, so it is the reference for what the HTTP stack
   alone does on this machine in the same run; the status figure is reported
   beside it as a ratio. Targets: >= 20,000 requests/s and p99 < 5 ms.
2. Concurrent exports: --exports exports of the --rows-row conversation CSV
   (bench/gen_conversations.py) to --format (csv: 100 exports write ~16.5 GB)
   are submitted at once; the daemon's
   RSS is sampled from /proc every 50 ms until the last one completes.
   Reported: wall time, the daemon's RSS before, its peak (VmHWM) and the
   peak while exports ran, against one export measured alone in the same run.

3. Events (--event-streams N): N `GET /v1/exports/{id}/events` streams
   follow one running export of the `gate` test plugin. Reported: the
   daemon's CPU and the status route under wrk with the streams open, against
   the same without them, and the delay from the export's end to each
   stream's `end` event.

The daemon and wrk share the machine's cores, as they would on a real host.
Standard library only, except for wrk.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "target" / "release"
BINARY = TARGET / "export-host"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """A running `export-host serve` in its own data folder."""

    def __init__(self, work: Path, data: Path, extra_env: dict[str, str], gate: bool = False):
        self.work = work
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        plugins = work / "plugins.toml"
        plugins.write_text(
            f'dir = "{TARGET}"\n'
            '[plugins.csv]\nlibrary = "libexport_csv.so"\n'
            f'[plugins.csv.config]\nroot = "{data}"\n'
            '[plugins.json]\nlibrary = "libexport_json.so"\n'
            f'[plugins.json.config]\nroot = "{data}"\n'
            + ('[plugins.gate]\nlibrary = "libexport_test_gate.so"\n' if gate else "")
        )
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith("EXPORT_HOST_")
        }
        self.env.update(
            {
                "EXPORT_HOST_DATA_DIR": str(work / "state"),
                "EXPORT_HOST_PLUGINS": str(plugins),
                "EXPORT_HOST_LISTEN": f"127.0.0.1:{self.port}",
                "EXPORT_HOST_LOG": "warn",
            }
        )
        self.env.update(extra_env)
        self.log = open(work / "daemon.log", "ab")
        self.proc = subprocess.Popen(
            [str(BINARY), "serve"], env=self.env, stdout=self.log, stderr=self.log
        )
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                sys.exit(f"the daemon did not start; see {work / 'daemon.log'}")
            time.sleep(0.1)

    def token(self, user: str) -> str:
        out = subprocess.run(
            [str(BINARY), "token", "create", "--user", user],
            env=self.env, check=True, capture_output=True, text=True,
        ).stdout
        match = re.search(r"eht_[A-Za-z0-9_-]+", out)
        if not match:
            sys.exit(f"no token in: {out}")
        return match.group(0)

    def request(self, method: str, path: str, token: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read())

    def cpu_seconds(self) -> float:
        """User + system CPU time the daemon has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) in KiB."""
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
        return fields["VmRSS"], fields["VmHWM"]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def wrk(url: str, token: str | None, connections: int, seconds: int, threads: int) -> dict:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(cmd + [url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {}
    for pct, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
        latency[pct] = float(value) * scale
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "p50_ms": latency.get("50"),
        "p99_ms": latency.get("99"),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "raw": out,
    }


def status_part(args, work: Path) -> None:
    data = work / "data"
    data.mkdir()
    (data / "small.csv").write_text("id,name\n1,ada\n2,grace\n")
    (work / "status").mkdir()
    daemon = Daemon(work / "status", data, {})
    try:
        token = daemon.token("bench")
        record = daemon.request(
            "POST", "/v1/exports?wait=30", token,
            {"loader": "csv", "format": "json", "selector": {"path": "small.csv"}},
        )
        url = f"{daemon.base}/v1/exports/{record['id']}"
        wrk(url, token, args.connections, 2, args.wrk_threads)  # warm-up
        status = wrk(url, token, args.connections, args.seconds, args.wrk_threads)
        health = wrk(daemon.base + "/healthz", None, args.connections, args.seconds, args.wrk_threads)
        _, hwm = daemon.rss_kib()
    finally:
        daemon.stop()
    print(f"\n## GET /v1/exports/{{id}}, {args.connections} connections, {args.seconds} s, wrk -t{args.wrk_threads}\n")
    print("| route | requests/s | p50 | p99 | non-2xx | vs /healthz |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, r in (("GET /v1/exports/{id} (token + record)", status), ("GET /healthz (reference)", health)):
        print(
            f"| {name} | {r['rps']:,.0f} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms "
            f"| {r['non_2xx']} | {r['rps'] / health['rps']:.2f}x |"
        )
    print(f"\ndaemon peak RSS during the run: {hwm / 1024:.1f} MiB")
    verdict = "met" if status["rps"] >= 20_000 and status["p99_ms"] < 5 else "NOT met"
    print(f"target (>= 20,000 req/s, p99 < 5 ms): {verdict}")


def exports_part(args, work: Path) -> None:
    data = work / "data-exports"
    data.mkdir()
    csv = data / "conversations.csv"
    cached = ROOT / "bench" / "out" / f"conversations-{args.rows}.csv"
    if cached.is_file():
        shutil.copy(cached, csv)
    else:
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / "gen_conversations.py"), "--rows", str(args.rows), "--out", str(csv)],
            check=True,
        )
    (work / "exports").mkdir()
    daemon = Daemon(work / "exports", data, {"EXPORT_HOST_MAX_PER_USER": str(args.exports + 10)})
    request = {"loader": "csv", "format": args.format, "selector": {"path": "conversations.csv"}}
    try:
        token = daemon.token("bench")
        idle_rss, _ = daemon.rss_kib()

        def run(n: int) -> tuple[float, int, list[dict]]:
            ids = [daemon.request("POST", "/v1/exports", token, request)["id"] for _ in range(n)]
            start = time.time()
            peak = 0
            pending = set(ids)
            records = {}
            while pending:
                rss, _ = daemon.rss_kib()
                peak = max(peak, rss)
                for i in list(pending):
                    r = daemon.request("GET", f"/v1/exports/{i}", token)
                    if r["status"] not in ("pending", "processing"):
                        pending.discard(i)
                        records[i] = r
                time.sleep(0.05)
            return time.time() - start, peak, list(records.values())

        one_wall, one_peak, one = run(1)
        many_wall, many_peak, many = run(args.exports)
        _, hwm = daemon.rss_kib()
    finally:
        daemon.stop()
    failed = [r for r in one + many if r["status"] != "completed"]
    rows = sum(r.get("row_count") or 0 for r in many)
    print(f"\n## {args.exports} concurrent exports of {args.rows:,} rows (csv -> {args.format}), WORKERS = CPUs\n")
    print("| run | wall | rows/s | daemon RSS peak (sampled) |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| 1 export (reference) | {one_wall:.1f} s | {args.rows / one_wall:,.0f} | {one_peak / 1024:.1f} MiB |")
    print(
        f"| {args.exports} exports | {many_wall:.1f} s ({many_wall / one_wall:.1f}x) | {rows / many_wall:,.0f} "
        f"| {many_peak / 1024:.1f} MiB ({many_peak / one_peak:.2f}x) |"
    )
    print(f"\ndaemon RSS idle {idle_rss / 1024:.1f} MiB, VmHWM over the whole run {hwm / 1024:.1f} MiB")
    if failed:
        print(f"FAILED exports: {len(failed)}: {failed[0].get('error')}")
        sys.exit(1)


def open_stream(daemon: Daemon, token: str, export_id: str) -> socket.socket:
    """An events stream of the export, its response head read."""
    sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=30)
    sock.sendall(
        f"GET /v1/exports/{export_id}/events HTTP/1.1\r\nHost: bench\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            sys.exit("an events stream closed before its head")
        head += chunk
    if not head.startswith(b"HTTP/1.1 200"):
        sys.exit(f"events stream refused: {head[:200]!r}")
    return sock


def events_part(args, work: Path) -> None:
    """What following exports by polling the record costs: the daemon's CPU
    and the status route's throughput with --event-streams streams open on a
    running export, against the same run without them, and how long after
    the export ends each stream gets its `end` event."""
    data = work / "data-events"
    data.mkdir()
    (work / "events").mkdir()
    gate = work / "events" / "gate-open"
    daemon = Daemon(work / "events", data, {}, gate=True)
    try:
        token = daemon.token("bench")
        created = daemon.request(
            "POST", "/v1/exports", token,
            {"loader": "gate", "format": "csv", "selector": {"until": str(gate)}},
        )
        export_id = created["id"]
        while daemon.request("GET", f"/v1/exports/{export_id}", token)["status"] != "processing":
            time.sleep(0.05)
        url = f"{daemon.base}/v1/exports/{export_id}"

        def measure() -> tuple[float, dict]:
            before = daemon.cpu_seconds()
            time.sleep(args.seconds)
            idle_cpu = (daemon.cpu_seconds() - before) / args.seconds
            return idle_cpu, wrk(url, token, args.connections, args.seconds, args.wrk_threads)

        quiet_cpu, quiet = measure()
        streams = [open_stream(daemon, token, export_id) for _ in range(args.event_streams)]
        busy_cpu, busy = measure()
        for sock in streams:
            sock.setblocking(False)
            try:
                while sock.recv(65536):
                    pass
            except BlockingIOError:
                pass
            sock.setblocking(True)
        opened = time.time()
        gate.write_text("")
        latencies = []
        for sock in streams:
            buffer = b""
            while b"event: end" not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buffer = buffer[-64:] + chunk
            latencies.append(time.time() - opened)
            sock.close()
    finally:
        daemon.stop()
    latencies.sort()
    n = args.event_streams
    print(f"\n## Events by polling the record: {n} streams open on one running export (SQLite)\n")
    print("| | daemon CPU while idle-waiting | GET /v1/exports/{id} requests/s | p99 |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| no stream (reference) | {quiet_cpu * 100:.1f}% of a core | {quiet['rps']:,.0f} | {quiet['p99_ms']:.2f} ms |")
    print(
        f"| {n} streams | {busy_cpu * 100:.1f}% of a core | {busy['rps']:,.0f} ({busy['rps'] / quiet['rps']:.2f}x) "
        f"| {busy['p99_ms']:.2f} ms |"
    )
    print(
        f"\nfrom the gate opening to each stream's `end` event: median {latencies[n // 2] * 1000:.0f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms (the export's own end included)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--exports", type=int, default=100)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--format", default="csv", help="the exports' format (csv keeps the disk use at ~165 MB an export)")
    ap.add_argument("--skip-status", action="store_true")
    ap.add_argument("--skip-exports", action="store_true")
    ap.add_argument("--event-streams", type=int, default=0,
                    help="also measure N events streams on one running export (needs the gate test plugin)")
    args = ap.parse_args()
    if not BINARY.is_file():
        sys.exit(f"{BINARY} is missing: cargo build --release --workspace")
    if not args.skip_status and shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="export-host-load-") as tmp:
        work = Path(tmp)
        if not args.skip_status:
            status_part(args, work)
        if not args.skip_exports:
            exports_part(args, work)
        if args.event_streams:
            events_part(args, work)


if __name__ == "__main__":
    main()
