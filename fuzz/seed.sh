#!/usr/bin/env bash
# Fills the working corpus of each fuzz target (fuzz/corpus/<target>/, not committed) from the
# committed seeds and the test fixtures. Run from anywhere; safe to re-run.
#
#   load, prepare: the raw .tflite files
#   invoke:        [u32 LE model length][model][input bytes]
#   mutate:        the committed mutation programs
set -euo pipefail
fuzz="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$fuzz")"
seed="$fuzz/corpus/seed"

mkdir -p "$fuzz/corpus/load" "$fuzz/corpus/prepare" "$fuzz/corpus/invoke" "$fuzz/corpus/mutate"

# Little-endian u32 as printf escapes.
le32() {
  local n=$1
  printf '\\%03o\\%03o\\%03o\\%03o' $((n & 255)) $(((n >> 8) & 255)) $(((n >> 16) & 255)) $(((n >> 24) & 255))
}

for f in "$seed"/models/*.tflite "$root"/tests/models/*.tflite; do
  [ -e "$f" ] || continue
  # The largest fixtures (whole networks) make every execution slow; the seeds cover them.
  [ "$(stat -c %s "$f")" -le 65536 ] || continue
  name="$(basename "$f" .tflite)"
  cp "$f" "$fuzz/corpus/load/$name.tflite"
  cp "$f" "$fuzz/corpus/prepare/$name.tflite"
  # Model followed by 256 bytes of input data from the file itself (any pattern will do).
  { printf "$(le32 "$(stat -c %s "$f")")"; cat "$f"; head -c 256 "$f"; } > "$fuzz/corpus/invoke/$name.bin"
done
cp "$seed"/invoke/*.bin "$fuzz/corpus/invoke/"
cp "$seed"/mutate/*.bin "$fuzz/corpus/mutate/"
for t in load prepare invoke mutate; do
  echo "$t: $(ls "$fuzz/corpus/$t" | wc -l) files"
done
