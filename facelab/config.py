"""Typed configuration for every stage, with every default in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ExtractConfig:
    face_type: str = "whole_face"  # half | mid_full | full | whole_face | head (training re-crops to its own type)
    size: int = 512  # aligned output side, px
    detector: str = "mediapipe"  # chosen by benchmarks/landmarks.py (README table)
    landmarker: str = "dlib68"  # chosen by benchmarks/landmarks.py (README table)
    refine: bool = True  # second landmark pass on the aligned crop, mapped back (DFL's "accurate" pass)
    smooth: bool = True  # One Euro smoothing of landmarks across video frames
    smooth_min_cutoff: float = 1.0  # Hz
    smooth_beta: float = 4.0
    image_format: str = "jpg"  # jpg | png
    jpeg_quality: int = 95
    interpolation: str = "cubic"  # cubic | lanczos (DFL's crops are accidentally bilinear)
    every: int = 1  # keep one frame in N
    max_faces: int = 0  # 0 = every face in a frame, largest first
    min_face: int = 24  # px; smaller detections are ignored
    only_like: str | None = None  # reference photo: keep only faces of this person
    only_like_threshold: float = 0.6  # dlib descriptor distance (dlib's own same-person threshold)
    debug_dir: str | None = None  # write frames with box, landmarks and crop drawn
    jobs: int = 1  # parallel face finders (threads); decode and writing always run in their own threads


@dataclass
class ModelConfig:
    """SAEHD-class swap model. Defaults are DFL's new-model defaults."""

    archi: str = "liae-ud"  # df | liae, with options from u, d, t, c ("df-ud", "liae-udt", ...)
    resolution: int = 128  # 64..512, multiple of 16 (32 with "d")
    face_type: str = "full"
    ae_dims: int = 256
    e_dims: int = 64
    d_dims: int = 64
    d_mask_dims: int = 22


@dataclass
class TrainConfig:
    """How a swap model is trained. Options marked (resumable) may change when a run resumes."""

    batch: int = 8  # global batch (split across torchrun ranks) (resumable)
    lr: float = 5e-5  # (resumable) losses are batch means, see facelab/train/losses.py
    optimizer: str = "adabelief"  # adabelief | rmsprop
    lr_dropout: float = 1.0  # 1.0 = off; DFL's "lr_dropout y" is 0.3 (resumable)
    clip_grad: float = 0.0  # global-norm clip; 0 = off (DFL's clipgrad uses 1.0) (resumable)
    random_warp: bool = True  # (resumable)
    random_src_flip: bool = False  # (resumable)
    random_dst_flip: bool = True  # (resumable)
    masked_training: bool = True  # (resumable)
    eyes_mouth_prio: bool = False  # (resumable)
    uniform_yaw: bool = False  # (resumable)
    blur_out_mask: bool = False  # (resumable)
    ct_mode: str = "none"  # none | rct | lct | mkl | idt | sot (resumable)
    random_hsv_power: float = 0.0  # (resumable)
    degrade_prob: float = 0.0  # probability of each degradation (blur, noise, jpeg, downsample) on inputs (resumable)
    gan_power: float = 0.0  # (resumable)
    gan_patch_size: int = 0  # 0 = resolution // 8
    gan_dims: int = 16
    true_face_power: float = 0.0  # DF only (resumable)
    face_style_power: float = 0.0  # (resumable)
    bg_style_power: float = 0.0  # (resumable)
    pretrain: bool = False
    precision: str = "auto"  # auto | bf16 | fp32 (resumable)
    seed: int = 0
    workers: int = 2  # data-loading processes per rank (resumable)
    preview_every: int = 200  # iterations (resumable)
    autosave_minutes: float = 25.0  # (resumable)
    backup_every: int = 0  # keep a backup every N iterations; 0 = off (resumable)
    backups_kept: int = 5  # (resumable)


@dataclass
class MergeConfig:
    """How swapped faces are put back into the destination frames (DFL's merger options)."""

    mask_mode: str = "learned-prd*learned-dst"  # hull | learned-prd | learned-dst | learned-prd*learned-dst | ...
    erode: int = 0  # px at 4x model resolution; < 0 dilates
    blur: int = 64  # px at 4x model resolution
    color: str = "rct"  # none | rct | lct | mkl | idt | sot (statistics inside the mask)
    blend: str = "overlay"  # overlay | seamless | hist-match
    sharpen: str = "none"  # none | box | gaussian
    sharpen_amount: int = 0
    face_scale: int = 0  # -50..50; > 0 shrinks the pasted face (DFL's output face scale)
    motion_blur: int = 0  # 0..100: blur the face along its frame-to-frame motion (DFL's motion blur power)
    crf: int = 18  # H.264 quality
    batch: int = 8  # faces per model call
    precision: str = "auto"  # auto (bf16 where native) | bf16 | fp32
    every_face: bool = True  # swap every face in a frame; False: only the largest
    only_like: str | None = None  # swap only faces of the person in this photo
