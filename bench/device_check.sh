#!/usr/bin/env bash
# The prepared device check: results and its log under $OUT/bench/results/ (docs/performance.md, "Device check").
# Here first:   mkdir -p data_carry && cp "$OSR_DATA_MIRROR/cifar10_jpeg.npz" data_carry/   (18.7 MB, git-ignored)
# GPU machine:  copy the tree with data_carry/, then `timeout 510 bash bench/device_check.sh` from its root
# Extra arguments go to `python -m bench.device_check` (e.g. --parts throughput; --tiny --device cpu: the rehearsal).
set -euo pipefail
cd "$(dirname "$0")/.."
export OUT="${OUT:-$PWD}" OSR_PROGRESS=0 PYTHONUNBUFFERED=1
# one inductor cache for the check and the teacher-stage subprocesses it starts (compiled kernels are reused)
export TORCHINDUCTOR_CACHE_DIR="${TORCHINDUCTOR_CACHE_DIR:-${TMPDIR:-/tmp}/osr_inductor_cache}"
PY="${PYTHON:-python3}"
LOG="$OUT/bench/results/device_check.log"   # the whole output: a remote runner may return only its end
mkdir -p "$(dirname "$LOG")"
{
  "$PY" -c "import sys, torch, torchvision; print('python', sys.version.split()[0], 'torch', torch.__version__, \
'torchvision', torchvision.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name(0))"
  "$PY" -m bench.device_check --out "$OUT" "$@"
} 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"
