#!/usr/bin/env bash
# `make device-rehearsal`: the device check as a first lease runs it, on the CPU. From a copy of the working tree
# (tracked and untracked-not-ignored files, as the device tool sends it) plus data_carry/, with no ../shared and no
# OSR_DATA_MIRROR, by the given Python (an environment with the GPU machine's packages only): first --tiny, then
# --tiny with inductor forced on; each $OUT is checked against the device tool's return limits.
# Usage: bash bench/rehearse.sh PYTHON [WORK_FOLDER]     (results stay in WORK_FOLDER/out_*)
set -euo pipefail
PY="$1"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${2:-$(mktemp -d "${TMPDIR:-/tmp}/osr-rehearsal.XXXXXX")}"
test -f "$SRC/data_carry/cifar10_jpeg.npz" || { echo "rehearse: $SRC/data_carry/cifar10_jpeg.npz missing"; exit 1; }
rm -rf "$WORK/repo" && mkdir -p "$WORK/repo"
git -C "$SRC" ls-files -z -co --exclude-standard \
  | tar -C "$SRC" --null -T - --ignore-failed-read -cf - | tar -C "$WORK/repo" -xf -
cp -r "$SRC/data_carry" "$WORK/repo/"
cd "$WORK/repo"
status=0
for run in "tiny:" "inductor:--compile inductor"; do
  name="${run%%:*}" extra="${run#*:}"
  out="$WORK/out_$name" && rm -rf "$out" && mkdir -p "$out"
  echo "== rehearsal $name: bench/device_check.sh --tiny --device cpu --budget-s 1800 $extra"
  # shellcheck disable=SC2086  # $extra is two words
  env -u OSR_DATA_MIRROR OUT="$out" PYTHON="$PY" bash bench/device_check.sh --tiny --device cpu --budget-s 1800 \
    $extra || status=1
  "$PY" -m bench.device.limits "$out" || status=1
done
rm -rf "$WORK/repo"
echo "rehearsal $([ $status = 0 ] && echo passed || echo FAILED); logs and results in $WORK/out_tiny, $WORK/out_inductor"
exit $status
