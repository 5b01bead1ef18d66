"""Golden outputs for the fixture and shared models, from three LiteRT backends.

For each model, tests/golden/<model stem>/ receives:
  meta.json           model path, seed, I/O names/shapes/dtypes/quantization,
                      whether REF ran, tool versions
  ref_output_<k>.npy  OpResolverType.BUILTIN_REF (reference kernels), if it ran
  xnn_output_<k>.npy  OpResolverType.BUILTIN (XNNPACK delegate applied)
  opt_output_<k>.npy  OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
  input_<k>.npy       only for models in tests/models whose inputs total
                      under 64 KiB, for debugging; the tests regenerate them
k is the position in subgraph 0's outputs (inputs). Inputs come from
tools/ferrolite_inputs.py with the given seed (default 0).

Each backend runs in its own subprocess: the reference kernels abort the whole
process on some valid models (e.g. the MobileNetV2 int8 bench model), and
such a crash must only mark REF as unavailable.

Usage (from the repository root):
    .venv/bin/python tools/make_golden.py            # every tests/models/*.tflite,
                                                     # plus ../shared/models/{seed,bench}
    .venv/bin/python tools/make_golden.py tests/models/fc_bias_f32.tflite
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
SHARED = REPO.parent / "shared"
GOLDEN = REPO / "tests" / "golden"
FIXTURES = REPO / "tests" / "models"
sys.path.insert(0, str(TOOLS))

import ferrolite_inputs  # noqa: E402

RESOLVERS = {"ref": "BUILTIN_REF", "xnn": "BUILTIN", "opt": "BUILTIN_WITHOUT_DEFAULT_DELEGATES"}
INPUT_DUMP_LIMIT = 64 * 1024


class GoldenError(Exception):
    pass


# ---------------------------------------------------------------- worker side


def _tensor_meta(detail) -> dict:
    scale, zero_point = detail["quantization"]
    return {
        "name": detail["name"],
        "shape": [int(d) for d in detail["shape"]],
        "dtype": np.dtype(detail["dtype"]).name,
        "scale": float(scale),
        "zero_point": int(zero_point),
    }


def run_worker(model: str, resolver: str, outdir: str, seed: int) -> None:
    """Run one model on one backend; write outputs and I/O details to outdir."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kwargs = {"experimental_preserve_all_tensors": True} if resolver == "BUILTIN_REF" else {}
    # One thread: results must not depend on the machine's core count.
    it = Interpreter(
        model_path=model,
        num_threads=1,
        experimental_op_resolver_type=getattr(OpResolverType, resolver),
        **kwargs,
    )
    it.allocate_tensors()
    ins = it.get_input_details()
    outs = it.get_output_details()
    out = Path(outdir)
    for k, d in enumerate(ins):
        x = ferrolite_inputs.generate_input(d["shape"], d["dtype"], k, seed)
        it.set_tensor(d["index"], x)
        np.save(out / f"input_{k}.npy", x)
    it.invoke()
    for k, d in enumerate(outs):
        np.save(out / f"output_{k}.npy", it.get_tensor(d["index"]))
    details = {"inputs": [_tensor_meta(d) for d in ins], "outputs": [_tensor_meta(d) for d in outs]}
    (out / "details.json").write_text(json.dumps(details))


# ---------------------------------------------------------------- driver side


def model_ref_path(model: Path) -> str:
    """How meta.json names the model: relative to the repo root, or
    shared/<...> for the read-only shared folder next to the repo."""
    model = model.resolve()
    for root, prefix in [(REPO, ""), (SHARED.resolve(), "shared/")]:
        try:
            return prefix + model.relative_to(root).as_posix()
        except ValueError:
            pass
    raise SystemExit(f"{model}: not under the repository or ../shared")


def run_backend(model: Path, key: str, seed: int, timeout: float):
    """(details, outputs, inputs) or None if the backend crashed or failed."""
    tmp = Path(tempfile.mkdtemp(prefix=f"golden_{key}_"))
    try:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(model), RESOLVERS[key], str(tmp), str(seed)]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            print(f"  {key}: timed out after {timeout}s", flush=True)
            return None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            print(f"  {key}: failed (exit {proc.returncode}): {' | '.join(tail)}", flush=True)
            return None
        details = json.loads((tmp / "details.json").read_text())
        outputs = [np.load(tmp / f"output_{k}.npy") for k in range(len(details["outputs"]))]
        inputs = [np.load(tmp / f"input_{k}.npy") for k in range(len(details["inputs"]))]
        return details, outputs, inputs
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("nan")
    if a.size == 0:
        return 0.0
    if np.issubdtype(a.dtype, np.floating):
        return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
    return float(np.max(np.abs(a.astype(np.int64) - b.astype(np.int64))))


def versions() -> dict:
    def ver(*names):
        for n in names:
            try:
                return metadata.version(n)
            except metadata.PackageNotFoundError:
                pass
        return "unknown"

    return {"litert": ver("ai-edge-litert"), "tensorflow": ver("tensorflow-cpu", "tensorflow")}


def make_golden(model: Path, seed: int, timeout: float, vers: dict) -> dict:
    results = {key: run_backend(model, key, seed, timeout) for key in RESOLVERS}
    base = results["xnn"] or results["opt"] or results["ref"]
    if base is None or results["xnn"] is None or results["opt"] is None:
        raise GoldenError(f"{model}: XNN or OPT failed; no goldens written")
    details, _, inputs = base

    out = GOLDEN / model.stem
    if out.exists():
        shutil.rmtree(out)  # drop files a previous run may have left (e.g. ref_*)
    out.mkdir(parents=True)
    for key, res in results.items():
        if res is None:
            continue
        for k, arr in enumerate(res[1]):
            np.save(out / f"{key}_output_{k}.npy", arr)

    in_fixtures = model.resolve().parent == FIXTURES.resolve()
    if in_fixtures and sum(x.nbytes for x in inputs) < INPUT_DUMP_LIMIT:
        for k, x in enumerate(inputs):
            np.save(out / f"input_{k}.npy", x)

    meta = {
        "model": model_ref_path(model),
        "seed": seed,
        "inputs": details["inputs"],
        "outputs": details["outputs"],
        "ref": results["ref"] is not None,
        "generator": "tools/make_golden.py",
        "litert": vers["litert"],
        "tensorflow": vers["tensorflow"],
    }
    text = json.dumps(meta, indent=1)
    # Keep shape lists on one line.
    text = re.sub(r"\[([-0-9,\s]*)\]", lambda m: "[" + re.sub(r"\s+", "", m.group(1)).replace(",", ", ") + "]", text)
    (out / "meta.json").write_text(text + "\n")

    summary = {"model": model.stem, "ref": meta["ref"], "ref_xnn": None, "ref_opt": None, "xnn_opt": None}
    pairs = [("ref_xnn", "ref", "xnn"), ("ref_opt", "ref", "opt"), ("xnn_opt", "xnn", "opt")]
    for label, a, b in pairs:
        if results[a] is not None and results[b] is not None:
            summary[label] = [max_abs_diff(x, y) for x, y in zip(results[a][1], results[b][1])]
    return summary


def default_models() -> list:
    models = sorted(FIXTURES.glob("*.tflite"))
    for sub in ["seed", "bench"]:
        folder = SHARED / "models" / sub
        if folder.is_dir():
            models += sorted(folder.glob("*.tflite"))
    return models


def _fmt(diffs):
    if diffs is None:
        return "n/a"
    return "[" + ", ".join(f"{d:.3g}" for d in diffs) + "]"


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _, _, model, resolver, outdir, seed = sys.argv
        run_worker(model, resolver, outdir, int(seed))
        return

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", type=Path, help="default: fixtures + shared seed/bench models")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per backend run")
    ap.add_argument("--summary", type=Path, help="also write the per-model max |diff| table as JSON")
    args = ap.parse_args()

    vers = versions()
    models = args.models or default_models()
    summaries = []
    failed = []
    for model in models:
        try:
            s = make_golden(model, args.seed, args.timeout, vers)
        except GoldenError as e:
            print(e, flush=True)
            failed.append(model.stem)
            continue
        summaries.append(s)
        if s["ref"]:
            line = f"max|ref-xnn| {_fmt(s['ref_xnn'])}  max|ref-opt| {_fmt(s['ref_opt'])}"
        else:
            line = f"REF failed; max|xnn-opt| {_fmt(s['xnn_opt'])}"
        print(f"{model.stem}: {line}", flush=True)
    if args.summary:
        args.summary.write_text(json.dumps(summaries, indent=1) + "\n")
    if failed:
        raise SystemExit(f"no goldens for: {', '.join(failed)}")


if __name__ == "__main__":
    main()
