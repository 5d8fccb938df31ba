"""Typed configuration for every stage, with every default in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ExtractConfig:
    face_type: str = "whole_face"  # half | mid_full | full | whole_face | head (training re-crops to its own type)
    size: int = 512  # aligned output side, px
    detector: str = "mediapipe"  # chosen by benchmarks/landmarks.py (README table)
    landmarker: str = "auto"  # dlib68, FaceMesh where dlib is unsure (faces/finder.py); benchmarks/landmarks.py
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
    # constant (DFL) | budget: warm-up, then a cosine decay that ends with the run's limit (--minutes or --iters)
    lr_schedule: str = "constant"  # (resumable)
    final_no_warp: float = 0.0  # the last fraction of the run's limit trains without warp, to sharpen (resumable)
    plan_iters: int = 0  # the iteration the schedules' plan ends at if known beforehand; 0 = the limit (resumable)
    lr_dropout: float = 1.0  # 1.0 = off; DFL's "lr_dropout y" is 0.3 (resumable)
    clip_grad: float = 0.0  # global-norm clip; 0 = off (DFL's clipgrad uses 1.0) (resumable)
    random_warp: bool = True  # (resumable)
    random_src_flip: bool = False  # (resumable)
    random_dst_flip: bool = True  # (resumable)
    masked_training: bool = True  # (resumable)
    mask_source: str = "hull"  # hull (landmark hull or polygons) | xseg ('facelab mask apply' masks) (resumable)
    eyes_mouth_prio: bool = False  # (resumable)
    uniform_yaw: bool = False  # (resumable)
    uniform_expression: bool = False  # draw closed/half/open eyes x closed/talking/open mouths evenly (resumable)
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
    synthetic_faces: str = "use"  # use | exclude: faces flagged synthetic by `facelab augment sample` (resumable)
    synthetic_weight: float = 1.0  # sampling probability of a synthetic src/dst face vs a real one; > 0 (resumable)
    ada: bool = False  # adaptive augmentation of what the GAN discriminator sees (needs gan_power > 0) (resumable)
    precision: str = "auto"  # auto | bf16 | fp32 (resumable)
    seed: int = 0
    workers: int = 2  # data-loading processes per rank (resumable)
    preview_every: int = 200  # iterations (resumable)
    # a cpu-quick save (292 MiB) takes 0.3-0.8 s on 2 cores: every 3 minutes costs < 0.5 % and bounds what a kill loses
    autosave_minutes: float = 3.0  # (resumable)
    autosave_iters: int = 0  # also save every N iterations; 0 = by time only (resumable)
    backup_every: int = 0  # keep a backup every N iterations; 0 = off (resumable)
    backups_kept: int = 5  # (resumable)


@dataclass
class MergeConfig:
    """How swapped faces are put back into the destination frames (DFL's merger options)."""

    # hull | learned-prd | learned-dst | learned-prd*learned-dst | learned-prd+learned-dst | stored | xseg-prd |
    # xseg-dst | xseg-prd*xseg-dst | learned-prd*learned-dst*xseg-prd*xseg-dst (xseg-dst: the dst faceset's masks from
    # 'facelab mask apply'; xseg-prd: mask_model run on the swapped face)
    mask_mode: str = "learned-prd*learned-dst"
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
    runtime: str = "torch"  # torch (a model folder) | onnxruntime (an exported .onnx or .dfm given as --model)
    mask_model: str | None = None  # mask model folder from 'facelab mask train', for the xseg-prd mask modes


@dataclass
class ExportConfig:
    """``facelab export``."""

    format: str = "auto"  # auto (by -o's suffix: .dfm, .onnx, else torchscript) | torchscript | onnx | dfm


@dataclass
class GanConfig:
    """StyleGAN2-ADA generator training (``facelab augment train``). 0 / "" / "auto" / -1 mean "derived from
    ``cfg``" (see ``facelab.augment.networks.resolve_gan_config``; numbers in
    ../shared/reference/stylegan2-ada-notes.md §4; the small-data preset's sources are cited there)."""

    resolution: int = 128  # 32..1024, power of two
    # by-size: small below 5000 real faces (GAN_SMALL_DATA_FACES), else auto | small (few-shot settings: DiffAugment,
    # no path length, narrower nets; README "Augmentation") | auto (StyleGAN2-ADA's) | cpu (narrow channels, for
    # CPU-only runs) | stylegan2 | paper256
    cfg: str = "by-size"
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 0  # auto/small: 2
    channel_base: int = 0  # auto: 16384 below 512 px, else 32768; small: 4096 (on a CPU 2048)
    channel_max: int = 0  # auto: 512; small: 256 (on a CPU 128)
    # total over processes; auto/small: max(min(world * min(4096 // R, 32), 64), world); small on a CPU: 8
    batch: int = 0
    mbstd_group: int = 0  # auto: min(batch per process, 4)
    lr: float = 0.0  # G and D; auto: 0.0025 (0.002 at 1024 px)
    gamma: float = 0.0  # R1 weight; auto: 0.0002 * R^2 / batch; small: that x 1..6.1 as the faceset shrinks
    ema_kimg: float = 0.0  # auto: batch * 10 / 32
    ema_rampup: float = 0.05  # EMA half-life ramp (fraction of images seen); 0 = off; stylegan2/paper256 turn 0.05 off
    pl_weight: float = -1.0  # path-length regularisation; < 0 = the cfg's: 2, small: 0 (off)
    style_mixing: float = 0.9  # probability
    r1_interval: int = 16  # lazy regularisation intervals
    pl_interval: int = 4
    mirror: bool = True  # dataset x-flips (faces are roughly symmetric)
    aug: str = "auto"  # ada (adaptive p) | fixed (p held at ada_p) | noaug; auto = the cfg's: ada, small: noaug
    # DiffAugment policy on every image D sees (Zhao et al. 2020): comma list of color, translation, cutout; none = off;
    # auto = the cfg's: none, small: color,translation,cutout
    diffaug: str = "auto"
    ada_p: float = 0.0  # initial (ada) or constant (fixed) augmentation probability
    ada_target: float = 0.6  # target of r_t = E[sign(D(real))] (the ADA paper's)
    ada_interval: int = 4  # minibatches between p adjustments
    ada_kimg: float = 500.0  # p can move by 1.0 in this many thousand real images
    # auto: bf16 where the hardware has it natively (CUDA, CPUs with AVX512-BF16 or AMX: there 2-3.7x fp32's kimg/h),
    # else fp32 (on an AVX2-only CPU bf16 is emulated: 0.1x fp32's, README "Augmentation")
    precision: str = "auto"  # auto | bf16 | fp32
    # half: fp16 weights + bf16 Adam second moments (first moments are not stored: with Adam's beta1 = 0 the next
    # step overwrites them), restored to fp32, resumes closely but not bit-exactly; fp32: exact resume (resumable)
    checkpoint_precision: str = "half"
    seed: int = 0
    workers: int = 0  # data-loading processes (images are preloaded; augmentation is on the tensor side)
    preview_every: int = 200  # iterations between preview grids (resumable)
    autosave_minutes: float = 3.0  # (resumable)
    autosave_iters: int = 0  # also save every N iterations; 0 = by time only (resumable)
    # samples drawn at every checkpoint and put through 'augment sample''s checks; the snapshot passing most is kept
    # as best.safetensors, which sampling uses (facelab/augment/select.py); 0 = off (resumable)
    probe_samples: int = 64


GAN_SMALL_DATA_FACES = 5000  # cfg by-size: fewer real faces than this train with the small-data preset


@dataclass
class DedupeConfig:
    """``facelab faceset dedupe``."""

    # consecutive talking-head frames differ by ~0.01 (median, measured on ../shared/data clips); 0.05 would throw
    # away 93 % of a video faceset
    threshold: float = 0.015  # mean absolute difference of 64 px grayscale faces, 0-1


@dataclass
class FilterConfig:
    """``facelab faceset filter``: what a face must satisfy to stay (None = not checked)."""

    yaw: tuple[float, float] | None = None  # inclusive degrees
    pitch: tuple[float, float] | None = None  # inclusive degrees
    min_blur: float | None = None  # sharpness score


@dataclass
class CoverageConfig:
    """What ``facelab faceset coverage`` and thin-bin filling call a thin bin."""

    min_dst: int = 5  # the bin holds at least this many dst faces
    fraction: float = 0.5  # and the real src share is below this fraction of the dst share


@dataclass
class SampleConfig:
    """``facelab augment sample``: which generated faces are kept."""

    # psi; lower = more typical, less varied. 1 (none): a small-data generator's average face is not the person's
    # (CPU 64 px run at 35 kimg, 128 samples: identity pass 0.039 at psi 1, 0.008 at 0.7, 0 at 0.5)
    truncation: float = 1.0
    min_identity: float = 0.6  # max dlib descriptor distance to the faceset's identity
    fill_poses: bool = False  # keep faces for the yaw/pitch bins where the src is thin (needs a dst faceset)
    fill_expressions: bool = False  # likewise for mouth/smile bins
    candidates: int = 8  # with fill_*: draw up to n x this many images
    seed: int = 0  # first latent seed
    confirm_detector: str = "dlib-mmod"  # second detector that must also find each face; "none" = trust the first
    snapshot: str = "best"  # of a generator folder: best (the probed snapshot that passed most, if any) | latest


@dataclass
class RenderConfig:
    """``facelab augment render``: 3D re-rendering of source faces in new poses and expressions."""

    min_identity: float = 0.6  # max dlib descriptor distance to the faceset's identity (2+ keeps every render)
    fill_faces: int = 20  # with --fill and no -n: faces each thin bin should hold, real and rendered
    fill_tries: int = 4  # with --fill: renders tried per face a bin still lacks
    preview_faces: int = 8  # source faces (rows) on the preview sheet
    workers: int = 0  # processes drawing and re-extracting; 0 = one per CPU core (at most 4) for big jobs


@dataclass
class FidConfig:
    """``facelab fid``."""

    resize: str = "bilinear-tf"  # bilinear-tf (TTUR/StyleGAN "legacy" numbers) | clean (clean-fid's PIL bicubic)
    inception_weights: str | None = None  # pytorch-fid .pth or TorchScript file; None = fid-helper's default_1.pt


@dataclass
class SwapConfig:
    """``facelab swap``: the whole job."""

    preset: str = "cpu-quick"  # named option set of facelab/train/presets.py


@dataclass
class MaskConfig:
    """Mask (XSeg-class) network training and apply (``facelab mask``); numbers measured in README "Masks"."""

    widths: str = "16,24,32,48,64,96"  # channels of the six U-Net levels (64..2 px after the 4x unshuffle)
    # the face's landmark hull is a 4th input channel: the network learns what to take away from it (occluders) or
    # add to it (a labeller's forehead), not the face's outline from scratch; False = DFL's image-only input
    hull_prior: bool = True
    batch: int = 8  # DFL's XSeg: 4
    optimizer: str = "adam"  # adam | rmsprop (DFL's, lr 1e-4)
    lr: float = 1e-3
    dice_weight: float = 1.0  # soft-dice term added to the sigmoid cross-entropy; 0 = BCE alone (DFL)
    occluder_prob: float = 0.5  # labelled faces: chance of pasted synthetic occluders (their alpha is the label)
    generic_occluder_prob: float = 1.0  # --generic: the same for the landmark-hull faces
    random_warp: bool = True  # DFL's random grid warp (same warp on image and label)
    hsv_power: float = 0.2  # colour jitter (DFL's random_hsv_power)
    shading: float = 0.5  # light falling off across the face by up to this much, before occluders (0 = off)
    blur_prob: float = 0.25  # Gaussian or motion blur on the input
    seed: int = 0
    workers: int = 0  # data-loading processes (resumable)
    preview_every: int = 100  # iterations between preview grids (resumable)
    autosave_minutes: float = 3.0  # (resumable)
    autosave_iters: int = 0  # (resumable)
    apply_batch: int = 16  # faces per forward pass in 'mask apply'
    threshold: float = 0.5  # 'mask apply' binarises the prediction here (as DFL)


@dataclass
class StudioConfig:
    """``facelab studio``: the browser UI for a workspace (README "Studio")."""

    host: str = "127.0.0.1"  # any host but a loopback one needs the access token printed at start
    port: int = 7860
