#!/usr/bin/env bash
# Issue 22 item 3: the quality-per-hour benchmark's `quality` preset for 10 minutes on a lent GPU, scored here.
# The device has PyTorch and OpenCV but no dlib, MediaPipe or PyAV: it trains and merges (PyAV carried as a wheel),
# and this machine scores the returned swapped.mp4 with the same code as every CPU curve.
#
# Here, once (the pair's facesets extracted by a CPU run of benchmarks/quality_per_hour.py; nothing is committed):
#   echo /.carry/ >> .git/info/exclude; echo /.whl/ >> .git/info/exclude
#   mkdir -p .carry/data/videos .carry/out/p7_to_p6 .whl
#   cp ../shared/data/pairs.json .carry/data/ && cp ../shared/data/videos/person_p6_lp_s18.mp4 .carry/data/videos/
#   cp -r bench-output/qph2/p7_to_p6/faceset_src bench-output/qph2/p7_to_p6/faceset_dst .carry/out/p7_to_p6/
#   .venv/bin/python -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 -d .whl av==18.1.0                      # ~36 MB; all of it ~55 MB
# Device, one call (carry .carry and .whl; timeout_s 600):
#   benchmarks/quality_gpu.sh p7_to_p6 10
# Back here: copy the returned files into bench-output/qph2-gpu/p7_to_p6/quality/ (curve.json, at_10min/...) beside
# the carried facesets, then score them (no training happens: the checkpoint is marked merged, not scored):
#   .venv/bin/python benchmarks/quality_per_hour.py --pair p7_to_p6 --out bench-output/qph2-gpu --recipes quality \
#       --checkpoints 10 --strip
set -uo pipefail
export PYTHONUNBUFFERED=1 FACELAB_PROGRESS=0
OUT="${OUT:-/tmp/out}"
pair="${1:-p7_to_p6}" minutes="${2:-10}"
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c 'import torch, cv2, av; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "av", av.__version__)'
python3 benchmarks/quality_per_hour.py --data .carry/data --out .carry/out --pair "$pair" --recipes quality \
    --checkpoints "$minutes" --no-score 2>&1 | tee "$OUT/train.log" | tail -20
run=.carry/out/$pair/quality
cp "$run/curve.json" "$run/probe.json" "$OUT/" 2>/dev/null
mkdir -p "$OUT/at_${minutes}min"
cp "$run/at_${minutes}min/swapped.mp4" "$run/at_${minutes}min/swapped.mp4.merge.json" "$OUT/at_${minutes}min/"
cp "$run/model/preview.png" "$run/model/losses.png" "$OUT/" 2>/dev/null
ls -l "$OUT" "$OUT/at_${minutes}min"
