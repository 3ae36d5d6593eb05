#!/usr/bin/env bash
# The prepared device check (issue 13): <= 7 min on one H200, results under $OUT/bench/results/.
# Here first:   mkdir -p data_carry && cp "$OSR_DATA_MIRROR/cifar10_jpeg.npz" data_carry/   (18.7 MB, git-ignored)
# Device tool:  run(command="bash bench/device_check.sh", carry=["data_carry"], timeout_s=480)
# Extra arguments go to `python -m bench.device_check` (e.g. --budget-s 300, --tiny --device cpu for a CPU try).
set -euo pipefail
cd "$(dirname "$0")/.."
export OUT="${OUT:-$PWD}" OSR_PROGRESS=0
# one inductor cache for the check and the teacher-stage subprocesses it starts (compiled kernels are reused)
export TORCHINDUCTOR_CACHE_DIR="${TORCHINDUCTOR_CACHE_DIR:-${TMPDIR:-/tmp}/osr_inductor_cache}"
PY="${PYTHON:-python3}"
"$PY" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, \
'cuda', torch.cuda.is_available() and torch.cuda.get_device_name(0))"
exec "$PY" -m bench.device_check --out "$OUT" "$@"
