#!/usr/bin/env python3
"""Generate a synthetic LLM-conversation log as CSV, for the export benchmark.

    python3 bench/gen_conversations.py --rows 1000000 --out bench/out/conversations-1000000.csv

Standard library only. The output is a pure function of --rows and --seed
(same arguments, same bytes), written as a stream: memory stays flat whatever
the row count, so the 10x scale file (10M rows, ~1.6 GB) is fine too. The file
is written beside the target and renamed into place when complete, so an
interrupted run never leaves a truncated file that looks finished.

Columns (header row first, RFC 4180 quoting by the csv module, LF line ends):

    message_id         uuid-like, lowercase hex (36 chars)
    conversation_id    "conv_" + 12 hex; rows of one conversation are consecutive
    user_id            digits, sometimes with leading zeros ("000123") - must stay text
    created_at         RFC 3339 with offsets (Z, +02:00, -07:00, +05:30, ...),
                       sometimes with milliseconds
    role               user / assistant / system / tool
    model              a model name; empty on user rows
    prompt_tokens      integer
    completion_tokens  integer, empty on user/system rows and sometimes missing
    latency_ms         float with 1-2 decimals ("123.40" keeps its trailing zero),
                       empty on user/system rows
    cost_usd           float with 6 decimals, sometimes empty
    text               free text: commas, double quotes, apostrophes, emoji,
                       non-Latin scripts, occasionally an embedded newline,
                       sometimes empty

About 160 bytes per row on average (1M rows ~ 160 MB).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import sys
import time

# Bump when the output for a given (rows, seed) changes: bench/run.py keeps
# generated files keyed by rows and regenerates when this differs.
GENERATOR_VERSION = 1
DEFAULT_SEED = 20240501

HEADER = [
    "message_id",
    "conversation_id",
    "user_id",
    "created_at",
    "role",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "cost_usd",
    "text",
]

MODELS = [
    "gpt-4o",
    "gpt-4o-mini",
    "claude-3-5-sonnet",
    "claude-3-haiku",
    "llama-3.1-70b",
    "mistral-large",
    "gemini-1.5-pro",
    "o1-mini",
]

OFFSETS = [
    dt.timezone.utc,
    dt.timezone(dt.timedelta(hours=2)),
    dt.timezone(dt.timedelta(hours=-7)),
    dt.timezone(dt.timedelta(hours=5, minutes=30)),
    dt.timezone(dt.timedelta(hours=9)),
    dt.timezone(dt.timedelta(hours=-3)),
]

# Fragments the free text is assembled from. Mixed on purpose: plain words,
# commas, double quotes, apostrophes, emoji (incl. multi-code-point ones),
# accents and non-Latin scripts.
WORDS = (
    "the data export job failed again yesterday could you check why "
    "please summarise this thread in three bullet points thanks "
    "sure here is the query you asked for it joins orders and users "
    "latency went up after the deploy so we rolled back "
    "what is the difference between a loader and a formatter "
    "token budget model answer context window retry timeout"
).split()
DECORATIONS = [
    ",",
    ", ",
    ".",
    "?",
    "!",
    ' "quoted" ',
    ' said "yes, of course" ',
    " it's ",
    " don't ",
    ' 12" pipe ',
    " 🙂 ",
    " 🚀",
    " 👍🏽 ",
    " 👨‍👩‍👧 ",
    " café ",
    " naïve ",
    " 数据导出 ",
    " Привет ",
    " مرحبا ",
    " €42,50 ",
    " a,b,c ",
    ' ""double"" ',
]
TOOL_TEXTS = [
    '{"status": "ok", "rows": 42}',
    '{"error": "timeout", "retry": true}',
    '{"result": [1, 2, 3], "note": "a, b"}',
    "SELECT id, name FROM users WHERE name = 'O''Brien';",
    "",
]
SYSTEM_TEXTS = [
    "You are a helpful assistant.",
    'You are a careful assistant. Answer in English, "briefly".',
    "Follow the user's instructions, and cite sources.",
]


def make_text(rng: random.Random, role: str) -> str:
    """Free text for one message."""
    if role == "tool":
        return rng.choice(TOOL_TEXTS)
    if role == "system":
        return rng.choice(SYSTEM_TEXTS)
    r = rng.random()
    if r < 0.03:
        return ""
    # Mostly short, sometimes long: a heavy-ish tail like real chat logs.
    if r < 0.75:
        n = rng.randint(1, 6)
    elif r < 0.96:
        n = rng.randint(6, 15)
    else:
        n = rng.randint(15, 40)
    words = rng.choices(WORDS, k=n)
    parts = []
    choice = rng.choice
    rand = rng.random
    for w in words:
        parts.append(w)
        x = rand()
        if x < 0.22:
            parts.append(choice(DECORATIONS))
        else:
            parts.append(" ")
    text = "".join(parts).strip(" ")
    if rand() < 0.04:
        # An embedded line break (occasionally CRLF) inside a quoted field.
        cut = len(text) // 2
        text = text[:cut] + ("\r\n" if rand() < 0.2 else "\n") + text[cut:]
    return text


def generate(rows: int, out, seed: int = DEFAULT_SEED) -> None:
    """Write the header and `rows` rows to the text stream `out`."""
    rng = random.Random(seed)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)

    getrandbits = rng.getrandbits
    rand = rng.random
    randint = rng.randint
    choice = rng.choice

    # 2024-01-01T00:00:00Z, advancing with the rows.
    clock = 1_704_067_200.0
    fromtimestamp = dt.datetime.fromtimestamp

    chunk = []
    remaining_in_conv = 0
    conv_id = ""
    user_id = ""
    tz = OFFSETS[0]
    model = MODELS[0]
    turn = 0
    for _ in range(rows):
        if remaining_in_conv == 0:
            remaining_in_conv = randint(2, 16)
            conv_id = "conv_%012x" % getrandbits(48)
            u = randint(1, 999_999)
            # About a third of user ids carry leading zeros to a fixed width.
            user_id = ("%06d" % u) if rand() < 0.35 else str(u)
            tz = choice(OFFSETS)
            model = choice(MODELS)
            turn = 0
            clock += rand() * 120.0
        remaining_in_conv -= 1

        if turn == 0 and rand() < 0.3:
            role = "system"
        elif turn % 2 == 0:
            role = "user" if turn == 0 or rand() < 0.93 else "tool"
        else:
            role = "assistant"
        turn += 1

        clock += rand() * 30.0
        ts = fromtimestamp(clock, tz)
        if rand() < 0.25:
            created_at = ts.isoformat(timespec="milliseconds")
        else:
            created_at = ts.isoformat(timespec="seconds")
        if tz is OFFSETS[0]:
            created_at = created_at[:-6] + "Z"

        h = "%032x" % getrandbits(128)
        message_id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

        prompt_tokens = randint(5, 4000)
        if role == "assistant" or role == "tool":
            completion_tokens = "" if rand() < 0.05 else str(randint(1, 2000))
            latency = rand() * 3000.0
            latency_ms = ("%.2f" % latency) if rand() < 0.5 else ("%.1f" % latency)
            cost_usd = "" if rand() < 0.1 else "%.6f" % (rand() * 0.05)
            row_model = model
        else:
            completion_tokens = ""
            latency_ms = ""
            cost_usd = "0.000000" if rand() < 0.5 else ""
            row_model = "" if role == "user" else model

        chunk.append(
            (
                message_id,
                conv_id,
                user_id,
                created_at,
                role,
                row_model,
                prompt_tokens,
                completion_tokens,
                latency_ms,
                cost_usd,
                make_text(rng, role),
            )
        )
        if len(chunk) >= 10_000:
            writer.writerows(chunk)
            chunk.clear()
    writer.writerows(chunk)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, required=True, help="data rows (header not counted)")
    ap.add_argument("--out", required=True, help="CSV file to write")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = ap.parse_args(argv)
    if args.rows < 0:
        ap.error("--rows must be >= 0")

    out_path = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    tmp = f"{out_path}.partial-{os.getpid()}"
    start = time.perf_counter()
    try:
        with open(tmp, "w", encoding="utf-8", newline="", buffering=1 << 20) as f:
            generate(args.rows, f, args.seed)
        size = os.path.getsize(tmp)
        os.replace(tmp, out_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    took = time.perf_counter() - start
    print(
        f"wrote {args.rows:,} rows, {size / 1e6:.1f} MB ({size / max(args.rows, 1):.0f} B/row) "
        f"to {out_path} in {took:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
