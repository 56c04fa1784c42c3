#!/usr/bin/env python3
"""Two builds of export-host on one export, runs interleaved.

On a machine whose speed drifts (a VM, a laptop), two benchmark runs taken a
few minutes apart can differ by a third; alternating the builds run by run
puts both under the same drift. Each build is a checkout with a release
build (`cargo build --release`); the input is the CSV bench/run.py writes.

    git worktree add /tmp/before <commit> && (cd /tmp/before && cargo build --release)
    python3 bench/run.py --skip-scale --skip-typed     # writes the 1M-row CSV once
    python3 bench/ab.py --before /tmp/before --after . --format json/jsonl --runs 30

Prints the median, minimum and maximum wall time and the median CPU time of
each build. Exit status 1 when an export fails.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PLUGINS = ["csv", "json", "html", "markdown", "parquet", "pdf", "txt", "xlsx"]


def registry(root, data, path):
    """A plugins.toml with every format plugin of `root`, in the host process
    (as bench/run.py runs them), reading CSVs from `data`."""
    lines = [f'dir = "{os.path.join(root, "target", "release")}"']
    for name in PLUGINS:
        lines += [f"[plugins.{name}]", f'library = "libexport_{name}.so"', 'isolation = "in-process"']
    lines += ["[plugins.csv.config]", f'root = "{data}"']
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")


def run_once(root, toml, args, output):
    command = [
        os.path.join(root, "target", "release", "export-host"),
        "--plugins", toml,
        "--max-rows", "100000000",
        "--max-file-size-mb", "1048576",
        "export", "--loader", "csv/csv", "--format", args.format,
        "--selector", '{"path": "%s"}' % args.csv,
        "-o", output,
    ]
    if args.options:
        command += ["--options", args.options]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{root}: the export failed: {done.stderr.decode(errors='replace').strip()}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="checkout with the first build")
    ap.add_argument("--after", required=True, help="checkout with the second build")
    ap.add_argument("--format", default="json/jsonl", help="the format, e.g. txt/txt")
    ap.add_argument("--options", help="formatter options as JSON")
    ap.add_argument("--csv", default="conversations-1000000.csv", help="a CSV in bench/out/")
    ap.add_argument("--runs", type=int, default=10, help="runs of each build")
    args = ap.parse_args()
    data = os.path.join(HERE, "out")
    if not os.path.exists(os.path.join(data, args.csv)):
        sys.exit(f"no bench/out/{args.csv}: run python3 bench/run.py --skip-scale --skip-typed first")
    builds = {"before": os.path.abspath(args.before), "after": os.path.abspath(args.after)}
    times = {name: [] for name in builds}
    with tempfile.TemporaryDirectory(dir=data) as scratch:
        tomls = {}
        for name, root in builds.items():
            tomls[name] = os.path.join(scratch, f"{name}.toml")
            registry(root, data, tomls[name])
        output = os.path.join(scratch, "out")
        for i in range(args.runs):
            # Alternate which goes first, so neither always follows the other.
            order = list(builds) if i % 2 == 0 else list(reversed(builds))
            for name in order:
                times[name].append(run_once(builds[name], tomls[name], args, output))
    print(f"csv -> {args.format}, {args.runs} runs each, interleaved")
    for name, runs in times.items():
        walls = sorted(w for w, _ in runs)
        cpus = [c for _, c in runs]
        print(
            f"  {name:6}  wall median {statistics.median(walls):.3f} s"
            f" (min {walls[0]:.3f}, max {walls[-1]:.3f})  cpu median {statistics.median(cpus):.3f} s"
        )
    ratio = statistics.median(w for w, _ in times["after"]) / statistics.median(w for w, _ in times["before"])
    print(f"  after / before, median wall: {ratio:.2f}x")


if __name__ == "__main__":
    main()
