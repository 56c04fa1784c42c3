#!/usr/bin/env python3
"""Export benchmark: export-host (csv loader -> jsonl formatter) against DuckDB.

    cargo build --release                     # once, at the workspace root
    python3 bench/run.py                      # 1M rows x 3 runs each, then one 10M-row run
    python3 bench/run.py --skip-scale         # without the 10x run
    python3 bench/run.py --rows 100000 --repeat 1 --scale 10   # quick smoke run
    python3 bench/run.py --formats            # every formatter of plugins.toml, plain/gzip/zstd, vs DuckDB
    python3 bench/run.py --formats --only csv,parquet --rows 100000   # a subset, smaller
    python3 bench/run.py --typed-only         # only the typed case: csv with `types` -> parquet

Generates (once, cached in bench/out/ keyed by row count) a conversation CSV
with bench/gen_conversations.py, exports it to JSON lines with export-host and
with DuckDB's `COPY (SELECT * FROM read_csv(...)) TO ... (FORMAT json)` in the
same run, alternating which goes first, and prints the median wall time, CPU
time (user + system) and peak RSS of each, the ratios, and whether the targets
are met. Then, the same way, the typed case: the same file exported to Parquet
by export-host with a `types` selector for its numeric and timestamp columns,
and by DuckDB's `COPY (SELECT * FROM read_csv(...)) TO ... (FORMAT parquet)`,
which infers the types itself (--skip-typed leaves it out, --typed-only runs
only it):

    * export-host wall time <= 0.6x DuckDB's
    * export-host peak RSS <= 64 MiB
    * the same peak RSS at --scale times the rows (<= 64 MiB and <= 1.25x the 1x peak)
    * typed case: export-host wall time <= 0.8x DuckDB's

It checks export-host's output too (one JSON line per input row; the first
rows equal the CSV's values, keys in header order) and DuckDB's row count.
Results also go to bench/out/results.json. Exits non-zero on errors (a tool
failing, wrong output, missing build), never because a target was missed.

Only the standard library is used; DuckDB comes from PyPI (duckdb-cli, pinned
below), installed with pip when missing.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
OUT = os.path.join(BENCH, "out")
RELEASE = os.path.join(ROOT, "target", "release")
EXPORT_HOST = os.path.join(RELEASE, "export-host")
GENERATOR = os.path.join(BENCH, "gen_conversations.py")

DUCKDB_CLI_PIN = "duckdb-cli==1.5.6"
DUCKDB_PY_PIN = "duckdb"  # only for the fallback, when the CLI cannot be had

TARGET_WALL_RATIO = 0.6
TARGET_RSS_MIB = 64.0
TARGET_SCALE_RSS_RATIO = 1.25
TARGET_TYPED_WALL_RATIO = 0.8
# The typed case's `types` selector: the generated file's numeric and timestamp
# columns (bench/gen_conversations.py). user_id stays text: its leading zeros
# are part of the value. cost_usd is float64, the type DuckDB infers for it.
TYPED_COLUMNS = {
    "created_at": "timestamp",
    "prompt_tokens": "int64",
    "completion_tokens": "int64",
    "latency_ms": "float64",
    "cost_usd": "float64",
}
# The pyarrow type each `types` name reads back as.
TYPED_ARROW = {"timestamp": "timestamp[us, tz=UTC]", "int64": "int64", "float64": "double", "text": "string"}
VERIFY_FIRST_ROWS = 100

sys.path.insert(0, BENCH)
import gen_conversations  # noqa: E402  (same folder; for GENERATOR_VERSION and the header)


class BenchError(Exception):
    """An error that makes the benchmark's figures meaningless."""


def log(msg: str = "") -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------
# Measuring one process
# --------------------------------------------------------------------------


def measure(cmd, label: str, stdout_path: str | None = None) -> dict:
    """Run `cmd` to completion; wall (perf_counter), CPU and peak RSS from wait4."""
    err_path = os.path.join(OUT, f".stderr-{os.getpid()}")
    with open(err_path, "wb") as err, open(stdout_path or os.devnull, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    with open(err_path, "rb") as f:
        stderr = f.read().decode("utf-8", "replace")
    os.unlink(err_path)
    if proc.returncode != 0:
        raise BenchError(
            f"{label} failed with exit code {proc.returncode}\n  command: {_show(cmd)}\n"
            + "".join(f"  | {line}\n" for line in stderr.strip().splitlines()[-30:])
        )
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        # Linux reports ru_maxrss in KiB. wait4's figure covers the child and
        # any descendants it waited for.
        "peak_rss_mib": usage.ru_maxrss / 1024.0,
        "stderr": stderr.strip()[-2000:],
    }


def _show(cmd) -> str:
    return " ".join(_quote(c) for c in cmd)


def _quote(s: str) -> str:
    return s if re.fullmatch(r"[\w@%+=:,./-]+", s) else "'" + s.replace("'", "'\\''") + "'"


# --------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------


def check_build(fmt: str, plugin_dir: str, typed: bool = False) -> None:
    missing = [
        p
        for p in [EXPORT_HOST, os.path.join(plugin_dir, "libexport_csv.so")]
        + ([os.path.join(plugin_dir, "libexport_json.so")] if fmt == "jsonl" else [])
        + ([os.path.join(plugin_dir, "libexport_parquet.so")] if typed else [])
        if not os.path.isfile(p)
    ]
    if missing:
        raise BenchError(
            "missing build output: "
            + ", ".join(os.path.relpath(p, ROOT) for p in missing)
            + f"\n  build first: (cd {ROOT} && cargo build --release)"
        )


def write_plugins_toml(plugin_dir: str, parquet: bool = False) -> str:
    path = os.path.join(OUT, "plugins.toml")
    text = (
        "# Written by bench/run.py; regenerated on every run.\n"
        f"dir = {json.dumps(plugin_dir)}\n\n"
        # In the host, as the shipped plugins.toml runs its first-party
        # plugins (bench/isolation.py measures worker processes).
        "[plugins.csv]\n"
        'library = "libexport_csv.so"\n'
        'isolation = "in-process"\n\n'
        "[plugins.csv.config]\n"
        f"root = {json.dumps(OUT)}\n\n"
        "[plugins.json]\n"
        'library = "libexport_json.so"\n'
        'isolation = "in-process"\n'
    )
    if parquet:
        text += '\n[plugins.parquet]\nlibrary = "libexport_parquet.so"\nisolation = "in-process"\n'
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def check_format_available(plugins_toml: str, fmt: str) -> str:
    """`export-host plugins list`; fail early when no loaded plugin offers `fmt`."""
    res = subprocess.run(
        [EXPORT_HOST, "--plugins", plugins_toml, "plugins", "list"],
        capture_output=True,
        text=True,
    )
    listing = res.stdout
    if res.returncode != 0:
        raise BenchError(f"export-host plugins list failed:\n{res.stdout}{res.stderr}")
    loaded = [line for line in listing.splitlines() if re.search(r"\bloaded\s*$", line)]
    if not any(re.search(r"formats?:[^;]*\b" + re.escape(fmt) + r"\b", line) for line in loaded):
        hint = (
            "\n  the json plugin (plugins/json) must provide the `jsonl` format; rebuild with "
            "`cargo build --release` once it does, or run with --format csv for a csv->csv baseline"
            if fmt == "jsonl"
            else ""
        )
        raise BenchError(f"no loaded plugin provides the format {fmt!r}:\n{listing}{hint}")
    return listing


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _duckdb_cli_binary() -> str | None:
    """The native binary of PyPI's duckdb-cli, or an ELF `duckdb` on PATH.

    The package's `duckdb` entry point is a Python script that starts the
    bundled binary in a subprocess; running the binary directly keeps Python's
    start-up out of DuckDB's figures.
    """
    res = subprocess.run(
        [sys.executable, "-c", "import duckdb_cli, os; print(os.path.dirname(duckdb_cli.__file__))"],
        capture_output=True,
        text=True,
    )
    if res.returncode == 0:
        candidate = os.path.join(res.stdout.strip(), "duckdb")
        if _is_elf(candidate) and os.access(candidate, os.X_OK):
            return candidate
    on_path = shutil.which("duckdb")
    if on_path:
        real = os.path.realpath(on_path)
        if _is_elf(real):
            return real
    return None


def find_duckdb(explicit: str | None, no_install: bool) -> dict:
    """{'kind': 'cli', 'path': ...} or {'kind': 'python'}; installs duckdb-cli if needed."""
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise BenchError(f"--duckdb {explicit} is not an executable")
        return {"kind": "cli", "path": explicit, "note": "given with --duckdb"}
    found = _duckdb_cli_binary()
    if found:
        return {"kind": "cli", "path": found, "note": ""}
    if not no_install:
        log(f"duckdb CLI not found; installing {DUCKDB_CLI_PIN} from PyPI ...")
        res = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", DUCKDB_CLI_PIN],
            capture_output=True,
            text=True,
        )
        if res.returncode == 0:
            found = _duckdb_cli_binary()
            if found:
                return {"kind": "cli", "path": found, "note": f"installed {DUCKDB_CLI_PIN}"}
        else:
            log(f"  pip install {DUCKDB_CLI_PIN} failed:\n{res.stderr.strip()[-1500:]}")
    # Fallback: the Python package, run in a subprocess so it is measured alike.
    probe = subprocess.run([sys.executable, "-c", "import duckdb"], capture_output=True)
    if probe.returncode != 0 and not no_install:
        log(f"installing the duckdb Python package ({DUCKDB_PY_PIN}) as a fallback ...")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", DUCKDB_PY_PIN])
        probe = subprocess.run([sys.executable, "-c", "import duckdb"], capture_output=True)
    if probe.returncode != 0:
        raise BenchError(
            f"DuckDB is not available: `pip install {DUCKDB_CLI_PIN}` (or pass --duckdb PATH)"
        )
    return {
        "kind": "python",
        "path": sys.executable,
        "note": "duckdb CLI unavailable: FALLBACK to the duckdb Python package in a `python3 -c` "
        "subprocess (its figures include Python start-up and `import duckdb`)",
    }


def duckdb_version(duck: dict) -> str:
    if duck["kind"] == "cli":
        res = subprocess.run([duck["path"], "-version"], capture_output=True, text=True)
        return (res.stdout or res.stderr).strip()
    res = subprocess.run(
        [sys.executable, "-c", "import duckdb; print('python duckdb', duckdb.__version__)"],
        capture_output=True,
        text=True,
    )
    return res.stdout.strip()


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def duckdb_sql(csv_path: str, out_path: str, fmt: str, threads: int) -> str:
    # all_varchar: every column stays text, as export-host's csv loader keeps
    # it, so DuckDB does not pay for (or get credit for) rewriting values.
    # The dialect is given, as export-host is told it, instead of sniffed.
    read = (
        f"read_csv({_sql_str(csv_path)}, all_varchar=true, header=true, "
        "delim=',', quote='\"', escape='\"')"
    )
    target = "(FORMAT json)" if fmt == "jsonl" else "(FORMAT csv, HEADER true)"
    return f"SET threads={threads}; COPY (SELECT * FROM {read}) TO {_sql_str(out_path)} {target};"


def duckdb_cmd(duck: dict, sql: str) -> list:
    if duck["kind"] == "cli":
        return [duck["path"], "-batch", "-c", sql]
    # The first statement is `SET threads=N`; the rest is the COPY (paths may hold ';').
    code = (
        "import duckdb, sys\n"
        "setting, copy = sys.argv[1].split('; ', 1)\n"
        "con = duckdb.connect()\n"
        "con.execute(setting)\n"
        "con.execute(copy)\n"
    )
    return [sys.executable, "-c", code, sql]


def export_host_cmd(plugins_toml: str, csv_name: str, out_path: str, fmt: str, rows: int, args, limit=None,
                    types=None) -> list:
    selector = {"path": csv_name}
    if limit is not None:
        selector["limit"] = limit
    if types is not None:
        selector["types"] = types
    cmd = [
        EXPORT_HOST,
        "--plugins",
        plugins_toml,
        # Lift the host's default caps (10M rows, 1 GiB) well above the run.
        "--max-rows",
        str(max(rows * 2, 100_000_000)),
        "--max-file-size-mb",
        str(1_048_576),
    ]
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    # Plugin-qualified names (`csv/csv`, `json/jsonl`): the export then loads
    # those plugins only, as a user naming them gets.
    if "/" not in fmt:
        fmt = f"{'json' if fmt in ('json', 'jsonl') else fmt}/{fmt}"
    cmd += [
        "export",
        "--loader",
        "csv/csv",
        "--format",
        fmt,
        "--selector",
        json.dumps(selector),
        "-o",
        out_path,
    ]
    if args.options:
        cmd += ["--options", args.options]
    return cmd


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


def ensure_dataset(rows: int) -> str:
    """bench/out/conversations-<rows>.csv, generated unless a matching one is cached."""
    name = f"conversations-{rows}.csv"
    path = os.path.join(OUT, name)
    meta_path = path + ".meta.json"
    want = {
        "rows": rows,
        "seed": gen_conversations.DEFAULT_SEED,
        "generator_version": gen_conversations.GENERATOR_VERSION,
    }
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        if {k: meta.get(k) for k in want} == want and os.path.getsize(path) == meta.get("bytes"):
            log(f"dataset: {os.path.relpath(path, ROOT)} (cached, {meta['bytes'] / 1e6:.1f} MB)")
            return path
    except (OSError, ValueError):
        pass
    log(f"dataset: generating {rows:,} rows -> {os.path.relpath(path, ROOT)} ...")
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, GENERATOR, "--rows", str(rows), "--out", path], check=True
    )
    took = time.perf_counter() - start
    size = os.path.getsize(path)
    with open(meta_path, "w", encoding="utf-8") as f:
        json.dump({**want, "bytes": size, "generate_s": round(took, 1)}, f)
    return path


def warm_page_cache(path: str) -> None:
    """Read the input once so every timed run starts from the same warm cache."""
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(1 << 22)
        while f.readinto(buf):
            pass


def count_lines(path: str) -> tuple[int, bool]:
    """Line feeds in the file, and whether it ends with one."""
    n = 0
    last = b""
    with open(path, "rb", buffering=0) as f:
        while True:
            chunk = f.read(1 << 22)
            if not chunk:
                break
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n, last == b"\n"


def count_rows(path: str, fmt: str) -> int:
    if fmt == "jsonl":
        n, ends_nl = count_lines(path)
        if not ends_nl and os.path.getsize(path) > 0:
            n += 1
        return n
    with open(path, newline="", encoding="utf-8") as f:
        return sum(1 for _ in csv.reader(f)) - 1  # less the header


def first_csv_rows(path: str, n: int) -> tuple[list, list]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = []
        for row in reader:
            rows.append(row)
            if len(rows) == n:
                break
    return header, rows


def verify_export_host(csv_path: str, out_path: str, fmt: str, rows: int) -> dict:
    """Row count equals the input's; the first rows equal the CSV's values, in order."""
    got = count_rows(out_path, fmt)
    if got != rows:
        raise BenchError(f"export-host wrote {got:,} rows to {out_path}, expected {rows:,}")
    header, want = first_csv_rows(csv_path, VERIFY_FIRST_ROWS)
    numbers = 0
    if fmt == "jsonl":
        with open(out_path, encoding="utf-8") as f:
            for i, expected in enumerate(want):
                line = f.readline()
                try:
                    # Numbers come back as their literal text: the jsonl
                    # formatter may write text that spells a number as a JSON
                    # number, which is right only if the spelling is the CSV's.
                    obj = json.loads(line, parse_int=_Literal, parse_float=_Literal)
                except ValueError as err:
                    raise BenchError(f"export-host output line {i + 1} is not JSON ({err}): {line[:300]!r}")
                if not isinstance(obj, dict) or list(obj.keys()) != header:
                    raise BenchError(
                        f"export-host output line {i + 1}: keys {list(obj)[:20] if isinstance(obj, dict) else type(obj).__name__}"
                        f" differ from the CSV header {header}"
                    )
                values = [obj[k] for k in header]
                numbers += sum(isinstance(v, _Literal) for v in values)
                if values != expected:
                    diffs = [
                        f"{k}: csv {e!r} vs json {g!r}" for k, e, g in zip(header, expected, values) if e != g
                    ]
                    raise BenchError(f"export-host output row {i + 1} differs from the CSV: " + "; ".join(diffs))
    else:
        out_header, out_rows = first_csv_rows(out_path, VERIFY_FIRST_ROWS)
        if out_header != header or out_rows != want:
            raise BenchError("export-host csv output's first rows differ from the input's")
    return {"rows": got, "first_rows_checked": len(want), "json_numbers_in_checked_rows": numbers}


class _Literal(str):
    """A JSON number, kept as the text it was written as."""

    def __repr__(self) -> str:
        return f"<number {str.__str__(self)}>"


# --------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------


def one_run(tool: str, cmd: list, out_path: str) -> dict:
    if os.path.exists(out_path):
        os.unlink(out_path)
    # Flush the previous run's dirty pages first, so no run pays for another's writeback.
    os.sync()
    res = measure(cmd, tool)
    if not os.path.isfile(out_path):
        raise BenchError(f"{tool} exited 0 but wrote no {out_path}")
    res["output_bytes"] = os.path.getsize(out_path)
    return res


def summarise(runs: list) -> dict:
    keys = ["wall_s", "cpu_s", "user_s", "sys_s", "peak_rss_mib", "output_bytes"]
    s = {k: statistics.median(r[k] for r in runs) for k in keys}
    s["wall_min_s"] = min(r["wall_s"] for r in runs)
    s["wall_max_s"] = max(r["wall_s"] for r in runs)
    s["runs"] = [{k: round(r[k], 4) if isinstance(r[k], float) else r[k] for k in keys} for r in runs]
    return s


def machine_info() -> dict:
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            mem = f.readline().split(":", 1)[1].strip()
    except OSError:
        pass

    def git(*a):
        r = subprocess.run(["git", "-C", ROOT, *a], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""

    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "git_head": git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def fmt_row(cols, widths) -> str:
    return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cols, widths)))


def print_table(rows: list) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        log("  " + fmt_row(r, widths))
        if i == 0:
            log("  " + "  ".join("-" * w for w in widths))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# --------------------------------------------------------------------------
# The typed case: csv with a `types` selector -> parquet
# --------------------------------------------------------------------------


def duckdb_typed_sql(csv_path: str, out_path: str, threads: int) -> str:
    # read_csv without options: DuckDB sniffs the dialect and infers every
    # column's type, the work export-host is spared by being told the types.
    return (
        f"SET threads={threads}; COPY (SELECT * FROM read_csv({_sql_str(csv_path)})) "
        f"TO {_sql_str(out_path)} (FORMAT parquet);"
    )


# Reads both Parquet files with pyarrow: their row counts and schemas, and
# export-host's first rows against the CSV's values (typed as `types` says;
# an empty cell is null, or "" in a text column).
VERIFY_TYPED = r"""
import csv, datetime, json, sys
import pyarrow.parquet as pq
eh_path, dd_path, csv_path, n, types = sys.argv[1:6]
n, types = int(n), json.loads(types)
eh, dd = pq.ParquetFile(eh_path), pq.ParquetFile(dd_path)
out = {
    "export_host_rows": eh.metadata.num_rows,
    "duckdb_rows": dd.metadata.num_rows,
    "export_host_schema": {f.name: str(f.type) for f in eh.schema_arrow},
    "duckdb_schema": {f.name: str(f.type) for f in dd.schema_arrow},
}
first = next(eh.iter_batches(batch_size=n)).to_pylist() if eh.metadata.num_rows else []
def want(kind, text):
    if kind == "int64":
        return int(text)
    if kind == "float64":
        return float(text)
    if kind == "timestamp":
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return text
diffs = []
with open(csv_path, newline="", encoding="utf-8") as f:
    reader = csv.reader(f)
    header = next(reader)
    out["header_matches"] = list(out["export_host_schema"]) == header
    for i, (row, got) in enumerate(zip(reader, first)):
        for name, text in zip(header, row):
            kind, value = types.get(name, "text"), got.get(name)
            if text == "":
                ok = value is None or (kind == "text" and value == "")
            else:
                ok = value == want(kind, text)
            if not ok and len(diffs) < 10:
                diffs.append(f"row {i + 1}, {name}: csv {text!r} vs parquet {value!r}")
out["first_rows_checked"] = len(first)
out["diffs"] = diffs
json.dump(out, sys.stdout)
"""


def verify_typed(csv_path: str, eh_out: str, dd_out: str, rows: int) -> dict:
    """Row counts, export-host's schema and first rows; needs pyarrow, else sizes only."""
    probe = subprocess.run(
        [sys.executable, "-c", VERIFY_TYPED, eh_out, dd_out, csv_path, str(VERIFY_FIRST_ROWS),
         json.dumps(TYPED_COLUMNS)],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        if "No module named 'pyarrow'" in probe.stderr:
            return {"verified": False, "note": "pyarrow not installed (pip install pyarrow): sizes only"}
        raise BenchError(f"reading the typed outputs back failed:\n{probe.stderr.strip()[-1500:]}")
    check = json.loads(probe.stdout)
    if check["export_host_rows"] != rows:
        raise BenchError(f"export-host wrote {check['export_host_rows']:,} rows to {eh_out}, expected {rows:,}")
    if check["duckdb_rows"] != rows:
        raise BenchError(f"DuckDB wrote {check['duckdb_rows']:,} rows, expected {rows:,}: its figures are not comparable")
    if not check["header_matches"]:
        raise BenchError(f"export-host's columns {list(check['export_host_schema'])} differ from the CSV header")
    wrong = {
        name: got
        for name, got in check["export_host_schema"].items()
        if got != TYPED_ARROW[TYPED_COLUMNS.get(name, "text")]
    }
    if wrong:
        raise BenchError(f"export-host's Parquet columns have the wrong types: {wrong}")
    if check["diffs"]:
        raise BenchError("export-host's typed rows differ from the CSV: " + "; ".join(check["diffs"]))
    return {"verified": True, **check}


def timed_runs(args, csv_path, rows, in_bytes, eh_cmd, eh_out, dd_cmd, dd_out):
    """Both tools on a warm page cache: the warm-up runs, then `args.repeat`
    timed runs each, alternating which goes first; returns the runs by tool."""
    warm_page_cache(csv_path)
    log(f"\n{args.repeat} run(s) each on {rows:,} rows ({in_bytes / 1e6:.1f} MB), alternating order, "
        f"after {args.warmup} untimed warm-up run(s) each:")
    runs = {"export-host": [], "duckdb": []}
    cmds = {"export-host": (eh_cmd, eh_out), "duckdb": (dd_cmd, dd_out)}
    for i in range(args.warmup):
        for tool in ("export-host", "duckdb"):
            r = one_run(tool, *cmds[tool])
            log(f"  warm-up {tool:<11}  wall {r['wall_s']:7.2f} s  (not counted)")
    for i in range(args.repeat):
        order = ["export-host", "duckdb"] if i % 2 == 0 else ["duckdb", "export-host"]
        for tool in order:
            r = one_run(tool, *cmds[tool])
            runs[tool].append(r)
            log(f"  run {i + 1} {tool:<11}  wall {r['wall_s']:7.2f} s  cpu {r['cpu_s']:7.2f} s  "
                f"peak RSS {r['peak_rss_mib']:8.1f} MiB")
    return runs


def typed_case(args, duck: dict, plugins_toml: str, csv_path: str) -> dict:
    """csv with `types` -> parquet beside DuckDB's inferring read_csv -> parquet, timed as the main run."""
    rows = args.rows
    csv_name = os.path.basename(csv_path)
    in_bytes = os.path.getsize(csv_path)
    eh_out = os.path.join(OUT, f"out-export-host-typed-{rows}.parquet")
    dd_out = os.path.join(OUT, f"out-duckdb-typed-{rows}.parquet")
    # The parquet formatter's defaults: --options is meant for the main run's formatter.
    ns = argparse.Namespace(batch_size=args.batch_size, options=None)
    eh_cmd = export_host_cmd(plugins_toml, csv_name, eh_out, "parquet", rows, ns, types=TYPED_COLUMNS)
    dd_cmd = duckdb_cmd(duck, duckdb_typed_sql(csv_path, dd_out, args.duckdb_threads))
    log(f"\ntyped case: csv with types -> parquet")
    log(f"export-host: {_show(eh_cmd)}")
    log(f"duckdb     : {_show(dd_cmd)}")

    runs = timed_runs(args, csv_path, rows, in_bytes, eh_cmd, eh_out, dd_cmd, dd_out)

    check = verify_typed(csv_path, eh_out, dd_out, rows)
    if check["verified"]:
        log(f"\nverified: export-host wrote {check['export_host_rows']:,} rows, typed "
            + ", ".join(f"{n} {check['export_host_schema'][n]}" for n in TYPED_COLUMNS)
            + f"; its first {check['first_rows_checked']} rows equal the CSV's values; "
            f"DuckDB wrote {check['duckdb_rows']:,} rows")
        log("  DuckDB inferred: " + ", ".join(f"{n} {t}" for n, t in check["duckdb_schema"].items()))
    else:
        log(f"\nNOT verified: {check['note']}")
    if not args.keep_output:
        for p in (eh_out, dd_out):
            if os.path.exists(p):
                os.unlink(p)

    eh = summarise(runs["export-host"])
    dd = summarise(runs["duckdb"])
    ratio_wall = eh["wall_s"] / dd["wall_s"]
    ratio_cpu = eh["cpu_s"] / dd["cpu_s"]
    ratio_rss = eh["peak_rss_mib"] / dd["peak_rss_mib"]
    log(f"\nResults, typed case: {rows:,} rows, {in_bytes / 1e6:.1f} MB CSV -> parquet; median of {args.repeat}; "
        f"{os.cpu_count()} CPUs; DuckDB threads={args.duckdb_threads}, read_csv inferring types")
    table = [["tool", "wall s", "cpu s", "peak RSS MiB", "wall vs DuckDB", "output MB"]]
    table.append(["export-host, types", f"{eh['wall_s']:.2f}", f"{eh['cpu_s']:.2f}", f"{eh['peak_rss_mib']:.1f}",
                  f"{ratio_wall:.2f}x", f"{eh['output_bytes'] / 1e6:.1f}"])
    table.append([f"duckdb{' (python fallback)' if duck['kind'] == 'python' else ''}",
                  f"{dd['wall_s']:.2f}", f"{dd['cpu_s']:.2f}", f"{dd['peak_rss_mib']:.1f}", "1.00x",
                  f"{dd['output_bytes'] / 1e6:.1f}"])
    print_table(table)
    log(f"  (ratios export-host/DuckDB: wall {ratio_wall:.2f}x, cpu {ratio_cpu:.2f}x, peak RSS {ratio_rss:.2f}x)")
    target = {"value": ratio_wall, "max": TARGET_TYPED_WALL_RATIO, "pass": ratio_wall <= TARGET_TYPED_WALL_RATIO}
    log(f"  {verdict(target['pass'])}  typed case: wall time vs DuckDB {ratio_wall:.2f}x  "
        f"(target <= {TARGET_TYPED_WALL_RATIO}x)")
    return {
        "types": TYPED_COLUMNS,
        "commands": {"export_host": _show(eh_cmd), "duckdb": _show(dd_cmd)},
        "export_host": eh,
        "duckdb": dd,
        "ratio_wall": ratio_wall,
        "ratio_cpu": ratio_cpu,
        "ratio_peak_rss": ratio_rss,
        "verification": check,
        "target_wall_ratio": target,
    }


def typed_main(args) -> int:
    """Only the typed case (--typed-only); results go to bench/out/results-typed.json."""
    os.makedirs(OUT, exist_ok=True)
    results: dict = {
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "args": vars(args),
        "machine": machine_info(),
    }
    try:
        plugin_dir = os.path.abspath(args.plugin_dir)
        check_build("parquet", plugin_dir, typed=True)
        plugins_toml = write_plugins_toml(plugin_dir, parquet=True)
        listing = check_format_available(plugins_toml, "parquet")
        eh_version = subprocess.run([EXPORT_HOST, "--version"], capture_output=True, text=True).stdout.strip()
        duck = find_duckdb(args.duckdb, args.no_install)
        dv = duckdb_version(duck)
        results["tools"] = {
            "export_host": {"version": eh_version, "plugins": listing.strip().splitlines()},
            "duckdb": {"kind": duck["kind"], "path": duck["path"], "version": dv, "note": duck["note"]},
        }
        m = results["machine"]
        log(f"machine : {m['cpu']} x{m['cpus']}, {m['memory']}, Linux {m['kernel']}")
        load = os.getloadavg()[0]
        results["machine"]["loadavg_1min_at_start"] = load
        if load > 0.5:
            log(f"  WARNING: load average {load:.2f} at start: other work is running, figures will be noisy")
        log(f"export-host: {eh_version} (git {m['git_head']}{', dirty tree' if m['git_dirty'] else ''}), "
            f"plugins {os.path.relpath(plugins_toml, ROOT)}")
        log(f"duckdb  : {dv} ({duck['kind']}: {duck['path']}), threads={args.duckdb_threads}")
        if duck["note"]:
            log(f"  NOTE: {duck['note']}")
        csv_path = ensure_dataset(args.rows)
        results["input"] = {"rows": args.rows, "path": csv_path, "bytes": os.path.getsize(csv_path)}
        results["typed"] = typed_case(args, duck, plugins_toml, csv_path)
        results["ok"] = True
    except (BenchError, subprocess.CalledProcessError) as err:
        results["ok"] = False
        results["error"] = str(err)
        log(f"\nerror: {err}")
    finally:
        path = os.path.join(OUT, "results-typed.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2, default=str)
            f.write("\n")
        log(f"\nresults written to {os.path.relpath(path, ROOT)}")
    return 0 if results.get("ok") else 1


# --------------------------------------------------------------------------
# Every format (--formats)
# --------------------------------------------------------------------------

# DuckDB's COPY target for the formats it has; others are measured alone.
DUCKDB_TARGETS = {
    "csv": "FORMAT csv, HEADER true",
    "jsonl": "FORMAT json",
    "json": "FORMAT json, ARRAY true",
    "parquet": "FORMAT parquet",
}
TARGET_FORMAT_RSS_MIB = 128.0
TARGET_FORMAT_WALL = {"csv": 0.6, "jsonl": 0.6, "parquet": 1.0}
TARGET_COMPRESSED_VS_PLAIN = 2.0
CODECS = ["none", "gzip", "zstd"]


def discover_formats(plugins_toml: str) -> list:
    """[(plugin, format)] of every loaded plugin in `plugins_toml`, from `plugins list --json`."""
    res = subprocess.run(
        [EXPORT_HOST, "--plugins", plugins_toml, "plugins", "list", "--json"],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        raise BenchError(f"export-host plugins list --json failed:\n{res.stdout}{res.stderr}")
    found = []
    for plugin in json.loads(res.stdout):
        if plugin.get("status") != "loaded":
            log(f"  skipped plugin {plugin.get('plugin')}: {plugin.get('status')}")
            continue
        for part in plugin.get("components", "").split(";"):
            kind, _, names = part.strip().partition(":")
            if kind.strip() in ("formats", "format"):
                found += [(plugin["plugin"], n.strip()) for n in names.split(",") if n.strip()]
    return found


def write_formats_plugins_toml(source: str, plugin_dir: str) -> str:
    """The plugins of `source` (library names), from `plugin_dir`, with the csv loader rooted at bench/out."""
    import tomllib

    with open(source, "rb") as f:
        registry = tomllib.load(f)
    lines = ["# Written by bench/run.py --formats; regenerated on every run.",
             f"dir = {json.dumps(plugin_dir)}", ""]
    for name, entry in registry.get("plugins", {}).items():
        # sql has loaders only, and needs a database and queries to load.
        if not entry.get("enabled", True) or name == "sql":
            continue
        lines += [f"[plugins.{name}]", f"library = {json.dumps(entry['library'])}"]
        # Run each plugin as the source file runs it (the shipped one keeps
        # first-party plugins in the host; the default is worker processes).
        if "isolation" in entry:
            lines.append(f"isolation = {json.dumps(entry['isolation'])}")
        if name in ("csv", "json"):
            lines += [f"[plugins.{name}.config]", f"root = {json.dumps(OUT)}"]
        lines.append("")
    path = os.path.join(OUT, "plugins-formats.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return path


def duckdb_format_sql(csv_path: str, out_path: str, fmt: str, codec: str, threads: int) -> str:
    read = (
        f"read_csv({_sql_str(csv_path)}, all_varchar=true, header=true, "
        "delim=',', quote='\"', escape='\"')"
    )
    target = DUCKDB_TARGETS[fmt]
    if codec != "none":
        target += f", COMPRESSION {codec}"
    return f"SET threads={threads}; COPY (SELECT * FROM {read}) TO {_sql_str(out_path)} ({target});"


def verify_format_output(path: str, fmt: str, rows: int, codec: str) -> str:
    """A row count where a reader is at hand; 'size only' otherwise."""
    if codec != "none":
        return "size only (compressed)"
    if fmt in ("csv", "jsonl"):
        got = count_rows(path, fmt)
        if got != rows:
            raise BenchError(f"{path}: {got:,} rows, expected {rows:,}")
        return f"{got:,} rows"
    if fmt == "parquet":
        probe = subprocess.run(
            [sys.executable, "-c",
             "import sys, pyarrow.parquet as pq; print(pq.ParquetFile(sys.argv[1]).metadata.num_rows)", path],
            capture_output=True, text=True,
        )
        if probe.returncode == 0:
            got = int(probe.stdout.strip())
            if got != rows:
                raise BenchError(f"{path}: {got:,} rows, expected {rows:,}")
            return f"{got:,} rows (pyarrow)"
    return "size only"


def gzip_engine() -> str:
    """Which deflate the host's gzip runs on here: it opens ISA-L's libisal.so.2 when it can."""
    import ctypes

    try:
        ctypes.CDLL("libisal.so.2")
        return "igzip (ISA-L, libisal.so.2)"
    except OSError:
        return "zlib-rs level 1 (libisal.so.2 not installed: apt install libisal2)"


def formats_main(args) -> int:
    """Every formatter of the registry, with and without gzip/zstd, beside DuckDB where it has the format."""
    os.makedirs(OUT, exist_ok=True)
    results: dict = {
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "args": vars(args),
        "machine": machine_info(),
        "formats": [],
    }
    try:
        plugin_dir = os.path.abspath(args.plugin_dir)
        check_build("csv", plugin_dir)
        plugins_toml = write_formats_plugins_toml(os.path.abspath(args.plugins_toml), plugin_dir)
        formats = discover_formats(plugins_toml)
        if args.only:
            wanted = set(args.only.split(","))
            formats = [(p, f) for p, f in formats if f in wanted]
        log(f"formats: {', '.join(f'{p}/{f}' for p, f in formats)} (from {args.plugins_toml})")
        results["gzip_engine"] = gzip_engine()
        log(f"gzip   : {results['gzip_engine']}")
        duck = find_duckdb(args.duckdb, args.no_install)
        log(f"duckdb : {duckdb_version(duck)} ({duck['kind']}), threads={args.duckdb_threads}")
        load = os.getloadavg()[0]
        results["machine"]["loadavg_1min_at_start"] = load
        if load > 0.5:
            log(f"  WARNING: load average {load:.2f} at start: other work is running, figures will be noisy")

        for plugin, fmt in formats:
            rows = args.rows
            csv_path = ensure_dataset(rows)
            warm_page_cache(csv_path)
            csv_name = os.path.basename(csv_path)
            for codec in CODECS:
                options = {} if codec == "none" else {"compression": codec}
                suffix = "" if codec == "none" else ("." + ("gz" if codec == "gzip" else "zst"))
                eh_out = os.path.join(OUT, f"fmt-export-host-{rows}.{fmt}{suffix}")
                ns = argparse.Namespace(batch_size=args.batch_size, options=json.dumps(options))
                eh_cmd = export_host_cmd(plugins_toml, csv_name, eh_out, f"{plugin}/{fmt}", rows, ns)
                entry = {"plugin": plugin, "format": fmt, "codec": codec, "rows": rows}
                eh_runs = [one_run(f"export-host {fmt} {codec}", eh_cmd, eh_out) for _ in range(args.repeat)]
                entry["verified"] = verify_format_output(eh_out, fmt, rows, codec)
                entry["export_host"] = summarise(eh_runs)
                if fmt in DUCKDB_TARGETS and not (fmt == "parquet" and codec != "none"):
                    dd_out = os.path.join(OUT, f"fmt-duckdb-{rows}.{fmt}{suffix}")
                    dd_cmd = duckdb_cmd(duck, duckdb_format_sql(csv_path, dd_out, fmt, codec, args.duckdb_threads))
                    entry["duckdb"] = summarise([one_run(f"duckdb {fmt} {codec}", dd_cmd, dd_out)
                                                 for _ in range(args.repeat)])
                    if not args.keep_output:
                        os.unlink(dd_out)
                if not args.keep_output:
                    os.unlink(eh_out)
                eh = entry["export_host"]
                line = (f"  {fmt:<9} {codec:<5} {rows:>9,} rows  wall {eh['wall_s']:6.2f} s  cpu {eh['cpu_s']:6.2f} s  "
                        f"peak RSS {eh['peak_rss_mib']:6.1f} MiB  {rows / eh['wall_s']:>10,.0f} rows/s")
                if "duckdb" in entry:
                    dd = entry["duckdb"]
                    entry["ratio_wall"] = eh["wall_s"] / dd["wall_s"]
                    line += f"  | duckdb {dd['wall_s']:6.2f} s {dd['peak_rss_mib']:6.1f} MiB -> {entry['ratio_wall']:.2f}x"
                log(line)
                results["formats"].append(entry)

        # ---- report ---------------------------------------------------------
        log(f"\nResults: median of {args.repeat}; {os.cpu_count()} CPUs; DuckDB threads={args.duckdb_threads}, "
            "all_varchar=true")
        table = [["format", "codec", "rows", "rows/s", "wall s", "cpu s", "peak RSS MiB", "output MB",
                  "DuckDB wall s", "DuckDB RSS MiB", "vs DuckDB"]]
        plain = {e["format"]: e["export_host"]["wall_s"] for e in results["formats"] if e["codec"] == "none"}
        checks = []
        for e in results["formats"]:
            eh = e["export_host"]
            dd = e.get("duckdb")
            table.append([e["format"], e["codec"], f"{e['rows']:,}", f"{e['rows'] / eh['wall_s']:,.0f}",
                          f"{eh['wall_s']:.2f}", f"{eh['cpu_s']:.2f}", f"{eh['peak_rss_mib']:.1f}",
                          f"{eh['output_bytes'] / 1e6:.1f}",
                          f"{dd['wall_s']:.2f}" if dd else "", f"{dd['peak_rss_mib']:.1f}" if dd else "",
                          f"{e['ratio_wall']:.2f}x" if dd else ""])
            checks.append((f"{e['format']} {e['codec']}: peak RSS {eh['peak_rss_mib']:.1f} MiB",
                           eh["peak_rss_mib"] <= TARGET_FORMAT_RSS_MIB, f"<= {TARGET_FORMAT_RSS_MIB:.0f} MiB"))
            if e["codec"] == "none" and e["format"] in TARGET_FORMAT_WALL and dd:
                target = TARGET_FORMAT_WALL[e["format"]]
                checks.append((f"{e['format']}: wall vs DuckDB {e['ratio_wall']:.2f}x",
                               e["ratio_wall"] <= target, f"<= {target}x"))
            if e["codec"] == "gzip" and e["format"] in plain:
                r = eh["wall_s"] / plain[e["format"]]
                e["ratio_vs_uncompressed"] = r
                checks.append((f"{e['format']} gzip: {r:.2f}x the uncompressed wall time",
                               r <= TARGET_COMPRESSED_VS_PLAIN, f"<= {TARGET_COMPRESSED_VS_PLAIN}x"))
        print_table(table)
        log("\nTargets:")
        for what, ok, target in checks:
            log(f"  {verdict(ok)}  {what}  (target {target})")
        results["targets_result"] = [{"what": w, "pass": ok, "target": t} for w, ok, t in checks]
        results["ok"] = True
    except BenchError as err:
        results["ok"] = False
        results["error"] = str(err)
        log(f"\nerror: {err}")
    finally:
        path = os.path.join(OUT, "results-formats.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2, default=str)
            f.write("\n")
        log(f"\nresults written to {os.path.relpath(path, ROOT)}")
    return 0 if results.get("ok") else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Benchmark export-host (csv -> jsonl) against DuckDB COPY ... (FORMAT json).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the main run")
    ap.add_argument("--scale", type=int, default=10, help="the scale run uses rows x scale")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per tool (median reported)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs per tool before the timed ones")
    ap.add_argument("--skip-scale", action="store_true", help="skip the rows x scale run")
    ap.add_argument("--scale-duckdb", action="store_true", help="run DuckDB in the scale run too")
    ap.add_argument(
        "--format",
        choices=["jsonl", "csv"],
        default="jsonl",
        help="output format: jsonl (the benchmark) or csv (csv->csv baseline; DuckDB FORMAT csv)",
    )
    ap.add_argument("--duckdb-threads", type=int, default=2, help="DuckDB's SET threads")
    ap.add_argument("--duckdb", metavar="PATH", help="use this duckdb CLI binary")
    ap.add_argument("--no-install", action="store_true", help="never pip install DuckDB")
    ap.add_argument("--batch-size", type=int, help="pass --batch-size to export-host; None: the host's default")
    ap.add_argument("--options", metavar="JSON",
                    help="formatter options for export-host, e.g. '{\"infer_numbers\": false}'; None: the formatter's defaults")
    ap.add_argument("--plugin-dir", default=RELEASE,
                    help="folder of libexport_csv.so and libexport_json.so (e.g. stripped copies)")
    ap.add_argument("--keep-output", action="store_true", help="keep the exported files in bench/out/")
    ap.add_argument("--formats", action="store_true",
                    help="benchmark every formatter of --plugins-toml (plain, gzip, zstd) instead, beside DuckDB "
                         "for csv, jsonl, json and parquet; --repeat defaults to 1 there")
    ap.add_argument("--plugins-toml", default=os.path.join(ROOT, "plugins.toml"),
                    help="with --formats: the registry whose plugins are measured")
    ap.add_argument("--only", metavar="F1,F2", help="with --formats: only these formats")
    ap.add_argument("--skip-typed", action="store_true",
                    help="skip the typed case (csv with a `types` selector -> parquet, beside DuckDB read_csv -> parquet)")
    ap.add_argument("--typed-only", action="store_true",
                    help="run only the typed case; results go to bench/out/results-typed.json")
    args = ap.parse_args(argv)
    if args.typed_only and (args.formats or args.skip_typed):
        ap.error("--typed-only goes with neither --formats nor --skip-typed")
    if args.typed_only:
        if args.rows < 1 or args.repeat < 1 or args.warmup < 0:
            ap.error("--rows and --repeat must be >= 1, --warmup >= 0")
        return typed_main(args)
    if args.formats:
        if "--repeat" not in (argv if argv is not None else sys.argv[1:]):
            args.repeat = 1
        return formats_main(args)
    if args.rows < 1 or args.repeat < 1 or args.scale < 1 or args.warmup < 0:
        ap.error("--rows, --repeat and --scale must be >= 1, --warmup >= 0")

    os.makedirs(OUT, exist_ok=True)
    fmt = args.format
    ext = "jsonl" if fmt == "jsonl" else "csv"
    results: dict = {
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "args": vars(args),
        "machine": machine_info(),
        "targets": {
            "wall_ratio_max": TARGET_WALL_RATIO,
            "peak_rss_mib_max": TARGET_RSS_MIB,
            "scale_rss_ratio_max": TARGET_SCALE_RSS_RATIO,
        },
    }
    try:
        plugin_dir = os.path.abspath(args.plugin_dir)
        check_build(fmt, plugin_dir, typed=not args.skip_typed)
        plugins_toml = write_plugins_toml(plugin_dir, parquet=not args.skip_typed)
        listing = check_format_available(plugins_toml, fmt)
        eh_version = subprocess.run([EXPORT_HOST, "--version"], capture_output=True, text=True).stdout.strip()
        duck = find_duckdb(args.duckdb, args.no_install)
        dv = duckdb_version(duck)
        results["tools"] = {
            "export_host": {"version": eh_version, "plugins": listing.strip().splitlines()},
            "duckdb": {"kind": duck["kind"], "path": duck["path"], "version": dv, "note": duck["note"]},
        }
        m = results["machine"]
        log(f"machine : {m['cpu']} x{m['cpus']}, {m['memory']}, Linux {m['kernel']}")
        load = os.getloadavg()[0]
        results["machine"]["loadavg_1min_at_start"] = load
        if load > 0.5:
            log(f"  WARNING: load average {load:.2f} at start: other work is running, figures will be noisy")
        libs = {n: os.path.getsize(os.path.join(plugin_dir, n))
                for n in ("libexport_csv.so", "libexport_json.so") if os.path.isfile(os.path.join(plugin_dir, n))}
        results["tools"]["export_host"]["plugin_libraries"] = {"dir": plugin_dir, "bytes": libs}
        log(f"export-host: {eh_version} (git {m['git_head']}{', dirty tree' if m['git_dirty'] else ''}), "
            f"csv loader -> {fmt} formatter, plugins {os.path.relpath(plugins_toml, ROOT)}")
        log("  plugin libraries: " + ", ".join(f"{n} {b / 1e6:.1f} MB" for n, b in libs.items())
            + ("" if plugin_dir == RELEASE else f" (from {plugin_dir})"))
        log(f"duckdb  : {dv} ({duck['kind']}: {duck['path']}), threads={args.duckdb_threads}")
        if duck["note"]:
            log(f"  NOTE: {duck['note']}")

        # ---- main run -------------------------------------------------------
        rows = args.rows
        csv_path = ensure_dataset(rows)
        csv_name = os.path.basename(csv_path)
        in_bytes = os.path.getsize(csv_path)
        results["input"] = {"rows": rows, "path": csv_path, "bytes": in_bytes}
        eh_out = os.path.join(OUT, f"out-export-host-{rows}.{ext}")
        dd_out = os.path.join(OUT, f"out-duckdb-{rows}.{ext}")
        eh_cmd = export_host_cmd(plugins_toml, csv_name, eh_out, fmt, rows, args)
        dd_cmd = duckdb_cmd(duck, duckdb_sql(csv_path, dd_out, fmt, args.duckdb_threads))
        results["commands"] = {"export_host": _show(eh_cmd), "duckdb": _show(dd_cmd)}
        log(f"\nexport-host: {_show(eh_cmd)}")
        log(f"duckdb     : {_show(dd_cmd)}")

        runs = timed_runs(args, csv_path, rows, in_bytes, eh_cmd, eh_out, dd_cmd, dd_out)

        check = verify_export_host(csv_path, eh_out, fmt, rows)
        dd_rows = count_rows(dd_out, fmt)
        log(f"\nverified: export-host wrote {check['rows']:,} rows; its first {check['first_rows_checked']} "
            f"rows equal the CSV's values"
            + (f" ({check['json_numbers_in_checked_rows']} values written as JSON numbers, spelled as in the CSV)"
               if check["json_numbers_in_checked_rows"] else "")
            + f"; DuckDB wrote {dd_rows:,} rows")
        if dd_rows != rows:
            raise BenchError(f"DuckDB wrote {dd_rows:,} rows, expected {rows:,}: its figures are not comparable")

        # A tiny export through the same plugins: the fixed cost (start-up,
        # plugin vetting and loading) apart from the data.
        tiny_out = os.path.join(OUT, f"out-export-host-first1000.{ext}")
        tiny_cmd = export_host_cmd(plugins_toml, csv_name, tiny_out, fmt, rows, args, limit=1000)
        fixed = summarise([one_run("export-host (fixed cost)", tiny_cmd, tiny_out) for _ in range(args.repeat)])

        eh = summarise(runs["export-host"])
        dd = summarise(runs["duckdb"])
        ratio_wall = eh["wall_s"] / dd["wall_s"]
        ratio_cpu = eh["cpu_s"] / dd["cpu_s"]
        ratio_rss = eh["peak_rss_mib"] / dd["peak_rss_mib"]
        results["main"] = {
            "export_host": eh,
            "duckdb": dd,
            "ratio_wall": ratio_wall,
            "ratio_cpu": ratio_cpu,
            "ratio_peak_rss": ratio_rss,
            "verification": {**check, "duckdb_rows": dd_rows},
            "export_host_fixed_cost_1000_rows": {k: fixed[k] for k in ("wall_s", "cpu_s", "peak_rss_mib")},
        }
        if not args.keep_output:
            for p in (eh_out, dd_out, tiny_out):
                if os.path.exists(p):
                    os.unlink(p)

        # ---- typed case -----------------------------------------------------
        typed = None
        if not args.skip_typed:
            check_format_available(plugins_toml, "parquet")
            typed = typed_case(args, duck, plugins_toml, csv_path)
            results["typed"] = typed

        # ---- scale run ------------------------------------------------------
        scale = None
        if not args.skip_scale and args.scale > 1:
            srows = rows * args.scale
            log(f"\nscale run: {srows:,} rows (x{args.scale}), one run per tool")
            s_csv = ensure_dataset(srows)
            s_name = os.path.basename(s_csv)
            warm_page_cache(s_csv)
            s_eh_out = os.path.join(OUT, f"out-export-host-{srows}.{ext}")
            s_eh = one_run("export-host", export_host_cmd(plugins_toml, s_name, s_eh_out, fmt, srows, args), s_eh_out)
            log(f"  export-host  wall {s_eh['wall_s']:7.2f} s  cpu {s_eh['cpu_s']:7.2f} s  "
                f"peak RSS {s_eh['peak_rss_mib']:8.1f} MiB")
            got = count_rows(s_eh_out, fmt)
            if got != srows:
                raise BenchError(f"export-host wrote {got:,} rows in the scale run, expected {srows:,}")
            log(f"  verified: export-host wrote {got:,} rows")
            if not args.keep_output:
                os.unlink(s_eh_out)
            s_dd = None
            if args.scale_duckdb:
                s_dd_out = os.path.join(OUT, f"out-duckdb-{srows}.{ext}")
                s_dd = one_run("duckdb", duckdb_cmd(duck, duckdb_sql(s_csv, s_dd_out, fmt, args.duckdb_threads)), s_dd_out)
                log(f"  duckdb       wall {s_dd['wall_s']:7.2f} s  cpu {s_dd['cpu_s']:7.2f} s  "
                    f"peak RSS {s_dd['peak_rss_mib']:8.1f} MiB")
                if not args.keep_output:
                    os.unlink(s_dd_out)
            scale = {
                "rows": srows,
                "input_bytes": os.path.getsize(s_csv),
                "export_host": {k: s_eh[k] for k in ("wall_s", "cpu_s", "peak_rss_mib", "output_bytes")},
                "duckdb": None if s_dd is None else {k: s_dd[k] for k in ("wall_s", "cpu_s", "peak_rss_mib", "output_bytes")},
                "rss_ratio_vs_1x": s_eh["peak_rss_mib"] / eh["peak_rss_mib"],
            }
            results["scale"] = scale

        # ---- report ---------------------------------------------------------
        log(f"\nResults: {rows:,} rows, {in_bytes / 1e6:.1f} MB CSV -> {fmt}; median of {args.repeat}; "
            f"{os.cpu_count()} CPUs; DuckDB threads={args.duckdb_threads}, all_varchar=true")
        table = [["tool", "wall s", "cpu s", "peak RSS MiB", "wall vs DuckDB", "output MB"]]
        table.append(["export-host", f"{eh['wall_s']:.2f}", f"{eh['cpu_s']:.2f}", f"{eh['peak_rss_mib']:.1f}",
                      f"{ratio_wall:.2f}x", f"{eh['output_bytes'] / 1e6:.1f}"])
        table.append([f"duckdb{' (python fallback)' if duck['kind'] == 'python' else ''}",
                      f"{dd['wall_s']:.2f}", f"{dd['cpu_s']:.2f}", f"{dd['peak_rss_mib']:.1f}", "1.00x",
                      f"{dd['output_bytes'] / 1e6:.1f}"])
        table.append(["export-host, 1,000 rows", f"{fixed['wall_s']:.2f}", f"{fixed['cpu_s']:.2f}",
                      f"{fixed['peak_rss_mib']:.1f}", "", "(fixed cost)"])
        if scale:
            se = scale["export_host"]
            table.append([f"export-host x{args.scale} ({scale['rows']:,})", f"{se['wall_s']:.2f}", f"{se['cpu_s']:.2f}",
                          f"{se['peak_rss_mib']:.1f}", "", f"{se['output_bytes'] / 1e6:.1f}"])
            if scale["duckdb"]:
                sd = scale["duckdb"]
                table.append([f"duckdb x{args.scale}", f"{sd['wall_s']:.2f}", f"{sd['cpu_s']:.2f}",
                              f"{sd['peak_rss_mib']:.1f}", "", f"{sd['output_bytes'] / 1e6:.1f}"])
        print_table(table)
        log(f"  (ratios export-host/DuckDB: wall {ratio_wall:.2f}x, cpu {ratio_cpu:.2f}x, peak RSS {ratio_rss:.2f}x)")

        targets = {
            "wall_ratio": {"value": ratio_wall, "max": TARGET_WALL_RATIO, "pass": ratio_wall <= TARGET_WALL_RATIO},
            "peak_rss_mib": {"value": eh["peak_rss_mib"], "max": TARGET_RSS_MIB,
                             "pass": eh["peak_rss_mib"] <= TARGET_RSS_MIB},
        }
        log("\nTargets:")
        log(f"  {verdict(targets['wall_ratio']['pass'])}  wall time vs DuckDB {ratio_wall:.2f}x  (target <= {TARGET_WALL_RATIO}x)")
        log(f"  {verdict(targets['peak_rss_mib']['pass'])}  peak RSS {eh['peak_rss_mib']:.1f} MiB  (target <= {TARGET_RSS_MIB:.0f} MiB)")
        if scale:
            se = scale["export_host"]["peak_rss_mib"]
            ratio = scale["rss_ratio_vs_1x"]
            targets["scale_peak_rss_ratio"] = {"value": ratio, "max": TARGET_SCALE_RSS_RATIO,
                                               "pass": ratio <= TARGET_SCALE_RSS_RATIO}
            targets["scale_peak_rss_mib"] = {"value": se, "max": TARGET_RSS_MIB, "pass": se <= TARGET_RSS_MIB}
            log(f"  {verdict(targets['scale_peak_rss_ratio']['pass'])}  peak RSS at x{args.scale} rows is "
                f"{ratio:.2f}x the 1x peak  (target: the same peak, <= {TARGET_SCALE_RSS_RATIO}x)")
            log(f"  {verdict(targets['scale_peak_rss_mib']['pass'])}  peak RSS at x{args.scale} rows {se:.1f} MiB"
                f"  (target <= {TARGET_RSS_MIB:.0f} MiB)")
        else:
            log("  ----  scale run skipped")
        if typed:
            targets["typed_wall_ratio"] = typed["target_wall_ratio"]
            log(f"  {verdict(typed['target_wall_ratio']['pass'])}  typed case (csv with types -> parquet): wall time "
                f"vs DuckDB {typed['ratio_wall']:.2f}x  (target <= {TARGET_TYPED_WALL_RATIO}x)")
        else:
            log("  ----  typed case skipped")
        results["targets_result"] = targets
        if duck["note"]:
            log(f"\nNOTE: {duck['note']}")
        results["ok"] = True
    except BenchError as err:
        results["ok"] = False
        results["error"] = str(err)
        log(f"\nerror: {err}")
    except subprocess.CalledProcessError as err:
        results["ok"] = False
        results["error"] = str(err)
        log(f"\nerror: {err}")
    finally:
        path = os.path.join(OUT, "results.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2, default=str)
            f.write("\n")
        log(f"\nresults written to {os.path.relpath(path, ROOT)}")
    return 0 if results.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
