#!/usr/bin/env python3
"""Times ferrolite and LiteRT (XNNPACK) side by side on the same models.

For every model the two runtimes are measured in alternating rounds (ferrolite, LiteRT, at
each thread count in turn), so that a busy or throttling machine slows both alike.
ferrolite runs as `ferrolite bench MODEL --json` (one process per round, whose median over
`--runs` invokes is one sample); LiteRT runs in this process with its default CPU setup,
`Interpreter(model_path, num_threads=N)`, which applies the XNNPACK delegate. The table gives
the median of the per-round medians, the ratio ferrolite / LiteRT (below 1: ferrolite is
faster) as the median of the rounds' paired ratios, with their quartiles, and the cold start
of each: ferrolite's `load_us` (file to ready to invoke) against LiteRT's
`Interpreter(...)` plus `allocate_tensors()`.

Run from the repository root after `cargo build --release`:

    .venv/bin/python benches/compare.py
    .venv/bin/python benches/compare.py --threads 1 --rounds 9 resnet18_224_f32

Models are named by file stem and looked up under --models-dir (default: the shared model
folder beside the repository, `../shared/models`, in its `seed/` and `bench/` folders), or
given as paths. A model ferrolite cannot run (an unsupported op, say) is skipped with the
first line of its error.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = [
    "cifar10_resnet18_pruned",
    "resnet18_224_f32",
    "resnet18_224_fp16",
    "mobilenet_v2_224_f32",
    "resnet18_224_int8",
    "mobilenet_v2_224_int8",
    "cifar10_resnet18_int8_all",
    # The other seed models and the dynamic-range ResNet18, outside the targets.
    "cifar10_resnet18_pruned_float16",
    "cifar10_resnet18_pruned_dynamic",
    "cifar10_resnet18_int8_notall",
    "resnet18_224_dynamic",
]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def find_model(name, models_dir):
    p = Path(name)
    if p.suffix == ".tflite" and p.exists():
        return p
    for sub in ("seed", "bench", ""):
        q = models_dir / sub / f"{name}.tflite"
        if q.exists():
            return q
    return None


def run_ferrolite(exe, model, threads, runs, warmup):
    """One round: a fresh process, `runs` timed invokes. Returns the bench JSON."""
    cmd = [
        str(exe), "bench", str(model), "--threads", str(threads),
        "--runs", str(runs), "--warmup", str(warmup), "--json",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        msg = (r.stderr.strip().splitlines() or ["exit status %d" % r.returncode])[0]
        raise RuntimeError(msg)
    return json.loads(r.stdout)


def litert_interpreter(model, threads):
    from ai_edge_litert.interpreter import Interpreter

    start = time.perf_counter()
    it = Interpreter(model_path=str(model), num_threads=threads)
    it.allocate_tensors()
    load_us = (time.perf_counter() - start) * 1e6
    rng = np.random.default_rng(0)
    for d in it.get_input_details():
        shape, dtype = d["shape"], d["dtype"]
        if np.issubdtype(dtype, np.floating):
            x = rng.uniform(-1.0, 1.0, size=shape).astype(dtype)
        else:
            info = np.iinfo(dtype)
            x = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
        it.set_tensor(d["index"], x)
    return it, load_us


def run_litert(it, runs, warmup):
    for _ in range(warmup):
        it.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        it.invoke()
        times.append((time.perf_counter() - start) * 1e6)
    return statistics.median(times)


def measure(exe, model, thread_counts, rounds, runs, warmup):
    """All thread counts of one model; each round runs every count back to back, so that
    per-round ratios (ferrolite / LiteRT, and one thread / two) compare measurements taken
    seconds apart."""
    keys = ("ours", "theirs", "our_load", "their_load")
    samples = {t: {k: [] for k in keys} for t in thread_counts}
    it = None
    for _ in range(rounds):
        for threads in thread_counts:
            s = samples[threads]
            j = run_ferrolite(exe, model, threads, runs, warmup)
            s["ours"].append(j["median_us"])
            s["our_load"].append(j["load_us"])
            # A fresh LiteRT interpreter each round, so its cold start is sampled as often
            # as ours; it is dropped first so two copies of the weights never coexist.
            it = None
            it, load = litert_interpreter(model, threads)
            s["their_load"].append(load)
            s["theirs"].append(run_litert(it, runs, warmup))
    results = {}
    for threads, s in samples.items():
        # Each round's two measurements are seconds apart, so their ratio cancels most of a
        # machine whose speed drifts (a shared virtual machine changes speed for seconds at
        # a time); the median of these paired ratios is the table's ratio.
        ratios = sorted(o / t for o, t in zip(s["ours"], s["theirs"]))
        q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        results[threads] = {
            "ratio": statistics.median(ratios),
            "ratio_q1": q1,
            "ratio_q3": q3,
            "round_ratios": ratios,
            "ferrolite_us": statistics.median(s["ours"]),
            "litert_us": statistics.median(s["theirs"]),
            "ferrolite_min_us": min(s["ours"]),
            "litert_min_us": min(s["theirs"]),
            "ferrolite_load_us": statistics.median(s["our_load"]),
            "litert_load_us": statistics.median(s["their_load"]),
        }
    if 1 in samples and 2 in samples:
        one, two = samples[1], samples[2]
        for who, key in (("ferrolite", "ours"), ("litert", "theirs")):
            results[2][f"{who}_speedup"] = statistics.median(
                a / b for a, b in zip(one[key], two[key]))
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", help="model stems or .tflite paths (default: %s)"
                    % ", ".join(DEFAULT_MODELS))
    ap.add_argument("--models-dir", type=Path, default=REPO.parent / "shared" / "models")
    ap.add_argument("--ferrolite", type=Path, default=None,
                    help="the ferrolite binary (default: $CARGO_TARGET_DIR or target, release)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds per case")
    ap.add_argument("--runs", type=int, default=20, help="timed invokes per round")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    exe = args.ferrolite
    if exe is None:
        target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
        exe = target / "release" / "ferrolite"
    if not exe.exists():
        sys.exit(f"{exe} not found: run `cargo build --release` first or pass --ferrolite")

    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs), {platform.system()}")
    print(f"rounds: {args.rounds} alternating, {args.runs} invokes each, {args.warmup} warmup")
    print()
    header = (f"{'model':<28} {'thr':>3} {'ferrolite ms':>12} {'litert ms':>10} {'ratio':>6}"
              f" {'quartiles':>11} {'load ms':>8} {'litert load':>11}")
    print(header)
    print("-" * len(header))
    results, notes = [], []
    for name in args.models or DEFAULT_MODELS:
        model = find_model(name, args.models_dir)
        if model is None:
            notes.append(f"{name}: model file not found under {args.models_dir}")
            continue
        try:
            per_thread = measure(exe, model, args.threads, args.rounds, args.runs, args.warmup)
        except RuntimeError as e:
            notes.append(f"{name}: skipped, ferrolite cannot run it: {e}")
            continue
        for threads, r in per_thread.items():
            r.update(model=name, threads=threads)
            results.append(r)
            print(f"{name:<28} {threads:>3} {r['ferrolite_us'] / 1e3:>12.3f}"
                  f" {r['litert_us'] / 1e3:>10.3f}"
                  f" {r['ratio']:>6.2f} {r['ratio_q1']:>5.2f}-{r['ratio_q3']:<5.2f}"
                  f" {r['ferrolite_load_us'] / 1e3:>8.1f} {r['litert_load_us'] / 1e3:>11.1f}",
                  flush=True)
    scaling = [(r["model"], r["ferrolite_speedup"], r["litert_speedup"])
               for r in results if "ferrolite_speedup" in r]
    if scaling:
        print()
        print("speed-up from 1 to 2 threads, median of the rounds' paired ratios"
              " (ferrolite, litert):")
        for m, ours, theirs in scaling:
            print(f"  {m:<28} {ours:.2f}x  {theirs:.2f}x")
    for n in notes:
        print("note:", n)
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_model(), "results": results,
                                         "notes": notes}, indent=1))


if __name__ == "__main__":
    main()
