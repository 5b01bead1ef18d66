#!/usr/bin/env bash
# Builds the fuzz targets and runs each one for ${FUZZ_SECONDS:-60} seconds, starting from the
# committed seed corpus; fails on the first crash, panic, leak, timeout or out-of-memory.
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Called from .ci/run;
# run by hand with e.g. `FUZZ_SECONDS=10 fuzz/ci.sh`.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-60}"

cargo +nightly fuzz build

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p artifacts
# One target per core, two at a time: each still gets its full minute of one core.
fuzz_one() {
  local t=$1 seeds
  # The first directory receives new inputs; the committed seeds stay untouched.
  mkdir -p "$work/$t"
  case "$t" in
    invoke) seeds=corpus/seed/invoke ;;
    mutate) seeds=corpus/seed/mutate ;;
    *) seeds=corpus/seed/models ;;
  esac
  if cargo +nightly fuzz run "$t" "$work/$t" "$seeds" -- \
    -max_total_time="$seconds" \
    -timeout=30 \
    -rss_limit_mb=2048 \
    -max_len=65536 \
    -error_exitcode=77 \
    -timeout_exitcode=78 \
    -print_final_stats=1 \
    -artifact_prefix="artifacts/$t-" >"$work/$t.log" 2>&1; then
    echo "== fuzz $t: $(grep -E '^Done' "$work/$t.log" | tail -1)"
  else
    echo "== fuzz $t FAILED; its log:"
    tail -n 60 "$work/$t.log"
    return 1
  fi
}
status=0
for pair in "load prepare" "invoke mutate"; do
  pids=()
  for t in $pair; do
    fuzz_one "$t" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do
    wait "$p" || status=1
  done
done
[ "$status" = 0 ] || exit 1
echo "== fuzzing found nothing"
