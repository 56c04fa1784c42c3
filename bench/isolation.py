#!/usr/bin/env python3
"""Process isolation overhead: the foundation benchmark's export (1M-row
conversation CSV -> JSON lines, csv loader + jsonl formatter) with both
plugins in-process and with both isolated (`isolation = "process"`), in the
same run, alternating which goes first.

    cargo build --release                      # once, at the workspace root
    python3 bench/isolation.py                 # 1M rows, 3 timed runs each
    python3 bench/isolation.py --rows 100000 --repeat 1   # quick smoke run

Prints the median wall time, CPU time (user + system, host and workers) and
peak RSS of each mode, and the isolated/in-process wall-time ratio against
the target (<= 1.3x). Checks that both modes wrote the same bytes. Reuses
bench/run.py's dataset (bench/out/conversations-<rows>.csv) and measuring;
results also go to bench/out/isolation.json. Exits non-zero on errors, never
because the target was missed.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import statistics
import sys

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import run as foundation  # noqa: E402  (bench/run.py: dataset and measuring)

TARGET_RATIO = 1.3
MODES = ("in-process", "process")


def write_plugins_toml(mode: str, plugin_dir: str) -> str:
    path = os.path.join(foundation.OUT, f"plugins-{mode}.toml")
    text = (
        "# Written by bench/isolation.py; regenerated on every run.\n"
        f"dir = {json.dumps(plugin_dir)}\n\n"
        "[plugins.csv]\n"
        'library = "libexport_csv.so"\n'
        f'isolation = "{mode}"\n\n'
        "[plugins.csv.config]\n"
        f"root = {json.dumps(foundation.OUT)}\n\n"
        "[plugins.json]\n"
        'library = "libexport_json.so"\n'
        f'isolation = "{mode}"\n'
    )
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def command(plugins_toml: str, csv_name: str, out_path: str) -> list[str]:
    return [
        foundation.EXPORT_HOST,
        "--plugins",
        plugins_toml,
        "export",
        "--loader",
        "csv",
        "--format",
        "jsonl",
        "--selector",
        json.dumps({"path": csv_name}),
        "-o",
        out_path,
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--plugin-dir", default=foundation.RELEASE)
    args = parser.parse_args()

    os.makedirs(foundation.OUT, exist_ok=True)
    try:
        foundation.check_build("jsonl", args.plugin_dir)
        csv_path = foundation.ensure_dataset(args.rows)
        foundation.warm_page_cache(csv_path)
        tomls = {mode: write_plugins_toml(mode, args.plugin_dir) for mode in MODES}
        outs = {mode: os.path.join(foundation.OUT, f"isolation-{mode}.jsonl") for mode in MODES}
        cmds = {mode: command(tomls[mode], os.path.basename(csv_path), outs[mode]) for mode in MODES}
        for _ in range(args.warmup):
            for mode in MODES:
                foundation.measure(cmds[mode], f"warm-up ({mode})")
        runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
        for n in range(args.repeat):
            order = MODES if n % 2 == 0 else tuple(reversed(MODES))
            for mode in order:
                result = foundation.measure(cmds[mode], f"export-host ({mode})")
                runs[mode].append(result)
                foundation.log(
                    f"  run {n + 1} {mode:>10}: {result['wall_s']:.2f} s wall, "
                    f"{result['cpu_s']:.2f} s CPU, {result['peak_rss_mib']:.1f} MiB peak RSS"
                )
        if not filecmp.cmp(outs["in-process"], outs["process"], shallow=False):
            raise foundation.BenchError("isolated and in-process outputs differ")
        size = os.path.getsize(outs["process"])
        for path in outs.values():
            os.unlink(path)
    except foundation.BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

    med = {
        mode: {
            key: statistics.median(r[key] for r in runs[mode])
            for key in ("wall_s", "cpu_s", "peak_rss_mib")
        }
        for mode in MODES
    }
    ratio = med["process"]["wall_s"] / med["in-process"]["wall_s"]
    cpu_ratio = med["process"]["cpu_s"] / med["in-process"]["cpu_s"]
    foundation.log(f"\n{args.rows:,} rows -> {size / 1e6:.1f} MB of JSON lines (identical in both modes)")
    for mode in MODES:
        m = med[mode]
        foundation.log(
            f"  {mode:>10}: median {m['wall_s']:.2f} s wall, {m['cpu_s']:.2f} s CPU, "
            f"{m['peak_rss_mib']:.1f} MiB peak RSS (largest process)"
        )
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    foundation.log(
        f"  isolated / in-process: {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU "
        f"(target <= {TARGET_RATIO}x wall: {verdict})"
    )
    with open(os.path.join(foundation.OUT, "isolation.json"), "w", encoding="utf-8") as f:
        json.dump(
            {
                "rows": args.rows,
                "repeat": args.repeat,
                "median": med,
                "wall_ratio": ratio,
                "cpu_ratio": cpu_ratio,
                "target_wall_ratio": TARGET_RATIO,
                "runs": {mode: [{k: v for k, v in r.items() if k != "stderr"} for r in runs[mode]] for mode in MODES},
            },
            f,
            indent=2,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
