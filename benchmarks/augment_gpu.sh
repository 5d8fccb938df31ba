#!/usr/bin/env bash
# What a lent GPU runs for the augment stage (issue 6), in one call each, from the repo root, with the
# machine's own python3 (torch + cv2 + safetensors + tqdm are all facelab's trainer needs):
#   benchmarks/augment_gpu.sh speed                      gan_speed.py: kimg/h, small and auto, 64/128 px, fp32/bf16
#   benchmarks/augment_gpu.sh train FACESET MINUTES PREC [RES [CFG]]  a generator (default 64 px, auto) for
#       MINUTES, exported to $OUT; GAN=DIR resumes (or starts) the run in DIR instead of a fresh /tmp/gan
# The exported generator (fp16, ~45 MB) comes back split in 15 MB parts (the device tool returns files of at
# most 16 MiB); join them here with `cat g.safetensors.part.* > g.safetensors`. A resumable checkpoint of at most
# 60 MiB (e.g. CFG small at 128 px: 50 MiB, half precision) comes back too, as ckpt.tar.part.*: join and unpack
# it into a folder (`cat ckpt.tar.part.* | tar x -C GAN_DIR`), and a later run resumes it (--out GAN_DIR, or
# GAN=GAN_DIR here with the folder carried).
set -uo pipefail
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1 FACELAB_PROGRESS=1
OUT="${OUT:-/tmp/out}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch, cv2; print("torch", torch.__version__, "cv2", cv2.__version__, "cuda", torch.cuda.is_available())'

case "${1:-}" in
speed)
    python3 benchmarks/gan_speed.py --repeat 5 --cfg small auto --res 64 128 --precision fp32 bf16 2>&1 | tee "$OUT/gan_speed.txt"
    ;;
train)
    faceset="$2" minutes="$3" prec="$4" res="${5:-64}" cfg="${6:-auto}" gan="${GAN:-/tmp/gan}"
    # ada_kimg 100: p can move within a run of ~100 kimg (the default 500 suits runs of thousands of kimg);
    # no snapshot probes: the device has no dlib or mediapipe (score the returned generator here with
    # benchmarks/augment_gan.py --minutes 0)
    python3 -m facelab augment train --faceset "$faceset" --out "$gan" --resolution "$res" --cfg "$cfg" \
        --precision "$prec" --ada-kimg 100 --preview-every 250 --minutes "$minutes" --probe-samples 0 \
        2>"$OUT/train.log"
    echo "train exit $?"
    tail -c 600 "$OUT/train.log" | tr '\r' '\n' | tail -3
    python3 -m facelab augment export --gan "$gan" --out /tmp/g.safetensors --fp16
    split -b 15M /tmp/g.safetensors "$OUT/g.safetensors.part."
    tar cf "$OUT/run.tar" -C "$gan" config.json preview.png losses.png previews tensorboard
    if [ "$(du -sm "$gan/checkpoint" | cut -f1)" -le 60 ]; then
        tar cf /tmp/ckpt.tar -C "$gan" config.json checkpoint && split -b 15M /tmp/ckpt.tar "$OUT/ckpt.tar.part."
    else
        echo "checkpoint over 60 MiB: not returned (--checkpoint-precision half and a smaller cfg fit)"
    fi
    ls -l "$OUT"
    ;;
*)
    echo "usage: $0 speed | train FACESET MINUTES fp32|bf16 [RES [CFG]]" >&2
    exit 2
    ;;
esac
