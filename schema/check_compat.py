#!/usr/bin/env python3
"""Checks that schema/tflite.fbs is wire-compatible with the upstream schema.

Upstream ships Python accessors generated from its own schema.fbs
(`schema_py_generated.py` inside the ai-edge-litert and tensorflow wheels).
That code spells out every wire fact: field slots, scalar types, defaults,
vector element sizes and alignments, enum values and union tags. So we
generate Python from our .fbs with the same flatc options and require every
class and function upstream defines to come out identical.

Usage (from any directory, with the pinned flatc on PATH or in $FLATC):
    python schema/check_compat.py [path/to/schema_py_generated.py]
Without an argument the file is taken from the installed ai_edge_litert
package (falling back to tensorflow.lite.python).
"""

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

SCHEMA = Path(__file__).resolve().parent / "tflite.fbs"


def upstream_module_path():
    for name in ("ai_edge_litert.schema_py_generated",
                 "tensorflow.lite.python.schema_py_generated"):
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            continue
        if spec is not None and spec.origin:
            return Path(spec.origin)
    sys.exit("no upstream schema_py_generated.py found; pass its path")


def blocks(source):
    """Maps each top-level `class X` / `def X` to its text."""
    parts = re.split(r"(?m)^(?=class |def )", source)
    result = {}
    for part in parts[1:]:
        key = re.match(r"(class|def) \w+", part).group(0)
        # Typing imports sit between blocks in flatc's output; not wire facts.
        part = re.sub(r"\ntry:\n    from typing import .*\nexcept:\n    pass\n",
                      "\n", part)
        result[key] = part.rstrip("\n")
    return result


def main():
    upstream = Path(sys.argv[1]) if len(sys.argv) > 1 else upstream_module_path()
    flatc = os.environ.get("FLATC", "flatc")
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([flatc, "--python", "--gen-object-api", "--gen-onefile",
                        "-o", out, str(SCHEMA)], check=True)
        ours = blocks((Path(out) / "tflite_generated.py").read_text())
    theirs = blocks(upstream.read_text())

    missing = sorted(set(theirs) - set(ours))
    differing = sorted(k for k in theirs if k in ours and theirs[k] != ours[k])
    extra = sorted(set(ours) - set(theirs))
    print(f"upstream: {upstream}")
    print(f"{len(theirs)} upstream definitions, {len(missing)} missing, "
          f"{len(differing)} differing, {len(extra)} only in ours")
    for key in missing:
        print(f"  missing: {key}")
    for key in differing:
        print(f"  differs: {key}")
    if extra:
        # Expected only when our schema is newer than the installed wheel.
        print("  only in ours: " + ", ".join(extra))
    return 1 if missing or differing else 0


if __name__ == "__main__":
    sys.exit(main())
