"""Mutation harness for the ferrolite CLI.

Takes every fixture in tests/models/ (and the models in ../shared/models/seed/ when that
directory exists), writes mutants of them (random byte flips, truncations, and structure-aware
edits of decoded fields), and runs `ferrolite run MUTANT` on each under a 4 GiB address-space
limit (`ulimit -v 4194304`) with a 20 s timeout. It reports every run that:

  - exits with a status other than 0, 1 or 2 (a panic exits with 101),
  - dies from a signal (abort, segfault, out-of-memory kill),
  - times out,
  - exits with 1 but does not print exactly one line on stderr.

Usage (from the repository root, after `cargo build --release`):

    .venv/bin/python tools/mutate_run.py --count 3000
    .venv/bin/python tools/mutate_run.py --count 200 --seed 7 --keep /tmp/mutants

Failing mutants are copied to --failures (default: target/mutate_run/failures) with their
stderr, so that each can be rerun by hand. The structure-aware edits use the flatbuffers object
API of the TFLite schema bundled with ai-edge-litert (see tools/requirements.txt).
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

ROOT = Path(__file__).resolve().parent.parent
ADDRESS_SPACE = 4194304 * 1024  # ulimit -v 4194304 (KiB)
TIMEOUT_S = 20

INTERESTING_INTS = [0, 1, -1, 2, -2, 3, 4, 7, 8, 16, 127, 128, 255, 256, 46341, 65535,
                    65536, 1 << 24, 1 << 30, 2**31 - 1, -2**31, -2**31 + 1]
INTERESTING_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 1 / 256, 1e-10, 1e-45, 1e30, 3.4028235e38,
                      float("nan"), float("inf"), float("-inf")]
INTERESTING_U64 = [0, 1, 2, 8, 2**32, 2**63, 2**64 - 1, 2**64 - 8]


# ----------------------------------------------------------------------------------------------
# Byte-level mutations


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(b))
        if rng.random() < 0.5:
            b[i] ^= 1 << rng.randrange(8)
        else:
            b[i] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
    return bytes(b)


def overwrite_word(data: bytes, rng: random.Random) -> bytes:
    """Writes an interesting 32-bit value at a 4-byte aligned position (offsets, sizes)."""
    b = bytearray(data)
    i = rng.randrange(max(1, len(b) // 4)) * 4
    v = rng.choice(INTERESTING_INTS) & 0xFFFFFFFF
    b[i:i + 4] = struct.pack("<I", v)[: len(b) - i]
    return bytes(b)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))]


# ----------------------------------------------------------------------------------------------
# Structure-aware mutations through the object API


def objects(node, out):
    """Every schema object (ModelT, TensorT, ...) reachable from `node`."""
    if isinstance(node, list):
        for x in node:
            objects(x, out)
    elif hasattr(node, "__dict__") and type(node).__module__ == schema.__name__:
        out.append(node)
        for v in vars(node).values():
            objects(v, out)


def mutate_value(v, rng: random.Random):
    """A new value of the same kind as `v`; None when `v` is not something we can edit."""
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return rng.choice(INTERESTING_INTS + [v + 1, v - 1])
    if isinstance(v, float):
        return rng.choice(INTERESTING_FLOATS)
    if isinstance(v, np.ndarray) or isinstance(v, list) and all(
            isinstance(x, (int, float)) for x in v):
        a = list(v.tolist() if isinstance(v, np.ndarray) else v)
        kind = rng.randrange(4)
        if kind == 0 and a:
            i = rng.randrange(len(a))
            a[i] = (rng.choice(INTERESTING_FLOATS) if isinstance(a[i], float)
                    else rng.choice(INTERESTING_INTS))
        elif kind == 1:
            a.append(rng.choice(INTERESTING_INTS))
        elif kind == 2 and a:
            del a[rng.randrange(len(a))]
        else:
            a = a[: rng.randrange(len(a) + 1)]
        if isinstance(v, np.ndarray):
            try:
                return np.array(a, dtype=v.dtype)
            except OverflowError:
                return np.array([x % 256 for x in a], dtype=v.dtype) if v.dtype == np.uint8 \
                    else None
        return a
    return None


def mutate_model(m, rng: random.Random) -> None:
    """Applies one to six edits to the unpacked model `m`."""
    for _ in range(rng.randint(1, 6)):
        kind = rng.randrange(10)
        sgs = m.subgraphs or []
        sg = rng.choice(sgs) if sgs else None
        if kind <= 3:
            # Any scalar or scalar vector of any table: shapes, indices, options, codes, ...
            objs = []
            objects(m, objs)
            o = rng.choice(objs)
            fields = [k for k, v in vars(o).items() if mutate_value(v, rng) is not None]
            if fields:
                k = rng.choice(fields)
                nv = mutate_value(getattr(o, k), rng)
                if nv is not None:
                    setattr(o, k, nv)
        elif kind == 4 and sg and sg.operators:
            # An operator index: out of range, −1, or another tensor.
            op = rng.choice(sg.operators)
            lst = rng.choice(["inputs", "outputs"])
            a = list(getattr(op, lst) if getattr(op, lst) is not None else [])
            if a:
                n = len(sg.tensors or [])
                a[rng.randrange(len(a))] = rng.choice([-1, -2, n, n + 1, 2**31 - 1,
                                                       rng.randrange(max(n, 1))])
                setattr(op, lst, a)
        elif kind == 5 and m.buffers:
            # A buffer's payload cut short or grown, or moved outside the flatbuffer.
            b = rng.choice(m.buffers)
            if rng.random() < 0.6 and b.data is not None and len(b.data):
                b.data = b.data[: rng.randrange(len(b.data))]
            else:
                b.data = None
                b.offset = rng.choice(INTERESTING_U64)
                b.size = rng.choice(INTERESTING_U64)
        elif kind == 6 and sg and sg.tensors:
            t = rng.choice(sg.tensors)
            t.buffer = rng.choice([0, len(m.buffers or []), 2**32 - 1,
                                   rng.randrange(max(1, len(m.buffers or [])))])
        elif kind == 7 and sg and sg.tensors:
            t = rng.choice(sg.tensors)
            if t.quantization is None:
                t.quantization = schema.QuantizationParametersT()
            q = t.quantization
            q.scale = [rng.choice(INTERESTING_FLOATS) for _ in range(rng.randrange(4))]
            q.zeroPoint = [rng.choice(INTERESTING_INTS) for _ in range(rng.randrange(4))]
            q.quantizedDimension = rng.choice([0, 1, 3, -1, 4, 2**31 - 1])
        elif kind == 8 and m.operatorCodes:
            c = rng.choice(m.operatorCodes)
            code = rng.randrange(-1, 215)
            c.builtinCode = code
            c.deprecatedBuiltinCode = rng.choice([min(max(code, -128), 127), 127, 0, -1])
        elif sg and sg.operators and len(sg.operators) > 1:
            i, j = rng.randrange(len(sg.operators)), rng.randrange(len(sg.operators))
            sg.operators[i], sg.operators[j] = sg.operators[j], sg.operators[i]


def pack(m) -> bytes | None:
    b = flatbuffers.Builder(1024)
    try:
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
    except (struct.error, OverflowError, TypeError, ValueError, AttributeError):
        # The object API refuses some out-of-range values (an i8 of 300): skip those edits.
        return None
    return bytes(b.Output())


def structural(data: bytes, rng: random.Random) -> bytes | None:
    try:
        m = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception:  # noqa: BLE001 - the fixture itself did not decode: nothing to edit
        return None
    mutate_model(m, rng)
    return pack(m)


# ----------------------------------------------------------------------------------------------
# Running


def limit_resources() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_cli(binary: Path, model: Path, threads: int):
    args = [str(binary), "run", str(model)]
    if threads > 1:
        args += ["--threads", str(threads)]
    start = time.monotonic()
    try:
        p = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=TIMEOUT_S, preexec_fn=limit_resources)
    except subprocess.TimeoutExpired:
        return "timeout", None, b"", time.monotonic() - start
    dt = time.monotonic() - start
    if p.returncode < 0:
        return "signal", p.returncode, p.stderr, dt
    if p.returncode not in (0, 1, 2):
        return "status", p.returncode, p.stderr, dt
    if p.returncode == 1:
        lines = p.stderr.decode("utf-8", "replace").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if len(lines) != 1:
            return "stderr", p.returncode, p.stderr, dt
    return "ok", p.returncode, p.stderr, dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=3000, help="number of mutants in total")
    ap.add_argument("--seed", type=int, default=1)
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    ap.add_argument("--bin", type=Path, default=target_dir / "release" / "ferrolite")
    ap.add_argument("--failures", type=Path, default=target_dir / "mutate_run" / "failures")
    ap.add_argument("--keep", type=Path, help="also keep every mutant in this directory")
    ap.add_argument("--max-fixture-bytes", type=int, default=1 << 20,
                    help="skip fixtures larger than this")
    args = ap.parse_args()

    if not args.bin.exists():
        print(f"{args.bin} not found: run `cargo build --release` first", file=sys.stderr)
        return 2
    fixtures = sorted((ROOT / "tests" / "models").glob("*.tflite"))
    seed_dir = ROOT.parent / "shared" / "models" / "seed"
    if seed_dir.is_dir():
        fixtures += sorted(seed_dir.glob("*.tflite"))
    fixtures = [f for f in fixtures if f.stat().st_size <= args.max_fixture_bytes]
    if not fixtures:
        print("no fixtures found", file=sys.stderr)
        return 2
    originals = {f: f.read_bytes() for f in fixtures}

    rng = random.Random(args.seed)
    outcomes = collections.Counter()
    statuses = collections.Counter()
    kinds = collections.Counter()
    failures = []
    slowest = (0.0, "")
    work = Path(tempfile.mkdtemp(prefix="ferrolite-mutants-"))
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    try:
        for i in range(args.count):
            fixture = fixtures[i % len(fixtures)]
            data = originals[fixture]
            mutant = None
            while mutant is None:
                kind = rng.choice(["flip", "flip", "word", "truncate", "struct", "struct",
                                   "struct", "struct+flip"])
                if kind == "flip":
                    mutant = flip_bytes(data, rng)
                elif kind == "word":
                    mutant = overwrite_word(data, rng)
                elif kind == "truncate":
                    mutant = truncate(data, rng)
                else:
                    mutant = structural(data, rng)
                    if mutant is not None and kind == "struct+flip":
                        mutant = flip_bytes(mutant, rng)
            kinds[kind] += 1
            name = f"{i:06d}_{kind}_{fixture.stem}.tflite"
            path = work / name
            path.write_bytes(mutant)
            if args.keep:
                shutil.copy(path, args.keep / name)
            threads = 2 if rng.random() < 0.2 else 1
            outcome, code, stderr, dt = run_cli(args.bin, path, threads)
            outcomes[outcome] += 1
            statuses[code] += 1
            if dt > slowest[0]:
                slowest = (dt, name)
            if outcome != "ok":
                args.failures.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, args.failures / name)
                (args.failures / (name + ".stderr")).write_bytes(stderr)
                failures.append((name, outcome, code, stderr[-300:]))
                print(f"FAIL {name}: {outcome} {code} "
                      f"{stderr.decode('utf-8', 'replace')[-300:]!r}", flush=True)
            path.unlink()
            if (i + 1) % 500 == 0:
                print(f"{i + 1}/{args.count} mutants, {len(failures)} failures, "
                      f"{time.monotonic() - t0:.0f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"fixtures: {len(fixtures)}; mutants: {args.count} "
          f"({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}); "
          f"time: {time.monotonic() - t0:.0f} s; slowest: {slowest[0]:.2f} s ({slowest[1]})")
    print("exit statuses: " + ", ".join(f"{k}: {v}" for k, v in sorted(
        statuses.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))))
    print("outcomes: " + ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())))
    if failures:
        print(f"{len(failures)} failures, copied to {args.failures}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
