#!/usr/bin/env bash
# What a lent GPU runs for the augment stage (issue 6), in one call each, from the repo root, with the
# machine's own python3 (torch + cv2 + safetensors + tqdm are all facelab's trainer needs):
#   benchmarks/augment_gpu.sh speed                      gan_speed.py: kimg/h, auto 64/128 px, fp32/bf16
#   benchmarks/augment_gpu.sh train FACESET MINUTES PREC  a 64-px auto generator for MINUTES, exported to $OUT
# The exported generator (fp16, ~45 MB) comes back split in 15 MB parts (the device tool returns files of at
# most 16 MiB); join them here with `cat g.safetensors.part.* > g.safetensors`.
set -uo pipefail
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1 FACELAB_PROGRESS=1
OUT="${OUT:-/tmp/out}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch, cv2; print("torch", torch.__version__, "cv2", cv2.__version__, "cuda", torch.cuda.is_available())'

case "${1:-}" in
speed)
    python3 benchmarks/gan_speed.py --repeat 5 --cfg auto --res 64 128 --precision fp32 bf16 2>&1 | tee "$OUT/gan_speed.txt"
    ;;
train)
    faceset="$2" minutes="$3" prec="$4" gan=/tmp/gan
    # ada_kimg 100: p can move within a run of ~100 kimg (the default 500 suits runs of thousands of kimg)
    python3 -m facelab augment train --faceset "$faceset" --out "$gan" --resolution 64 --cfg auto \
        --precision "$prec" --ada-kimg 100 --preview-every 250 --minutes "$minutes" 2>"$OUT/train.log"
    echo "train exit $?"
    tail -c 600 "$OUT/train.log" | tr '\r' '\n' | tail -3
    python3 -m facelab augment export --gan "$gan" --out /tmp/g.safetensors --fp16
    split -b 15M /tmp/g.safetensors "$OUT/g.safetensors.part."
    tar cf "$OUT/run.tar" -C "$gan" config.json preview.png losses.png previews tensorboard
    ls -l "$OUT"
    ;;
*)
    echo "usage: $0 speed | train FACESET MINUTES fp32|bf16" >&2
    exit 2
    ;;
esac
