#!/usr/bin/env bash
# What a lent GPU runs for the speed push (issue 19, item 5), in one device call from the repo root, with the
# machine's own python3:
#   benchmarks/gpu.sh SRC_FACESET DST_FACESET
# (facesets extracted here and carried, e.g. bench-output/qph2/p7_to_p6/faceset_src and faceset_dst: ~10 MB).
# Prints training ms/iter at bf16 and fp32 for liae-ud@256 batch 8 and df-ud@128 batch 16 with GFLOP per step,
# achieved TFLOP/s and MFU against the card's dense bf16 peak (benchmarks/train_speed.py --flops), then merge fps on
# CUDA (benchmarks/merge_speed.py) where PyAV and dlib are installed. DFL reports ~300 ms/iter at 128 px, batch 8.
set -uo pipefail
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1
OUT="${OUT:-/tmp/out}"
mkdir -p "$OUT"
if [ $# -ne 2 ]; then
    echo "usage: $0 SRC_FACESET DST_FACESET" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
python3 benchmarks/train_speed.py --faceset "$1" "$2" --configs liae-ud@256x8,df-ud@128x16 \
    --precisions bf16,fp32 --iters 20 --flops 2>&1 | tee "$OUT/train_speed.txt"
if python3 -c 'import av, dlib' 2>/dev/null; then
    python3 benchmarks/merge_speed.py --data "${DATA:-../shared/data}" 2>&1 | tee "$OUT/merge_speed.txt"
else
    echo "merge fps: skipped, this python3 lacks PyAV or dlib (python3 -m pip install -r requirements.txt)" |
        tee "$OUT/merge_speed.txt"
fi
