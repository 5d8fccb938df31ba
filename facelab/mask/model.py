"""A trained mask model: load it (never unpickled: safetensors + JSON) and predict masks.

``load_mask_model(path)`` takes a folder written by ``facelab mask train``; ``MaskModel.predict`` takes aligned
whole-face crops. This module depends only on torch and the layers below the stages (io, errors, config), so
merge can use it once it moves to ``facelab.models`` (stages do not import each other).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import cv2
import numpy as np
import torch

from facelab.config import MaskConfig
from facelab.errors import FacelabError
from facelab.io import checkpoint
from facelab.mask.network import RESOLUTION, MaskNet


def parse_widths(text: str) -> tuple[int, ...]:
    try:
        w = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        raise FacelabError(f"mask widths must be six comma-separated numbers, not {text!r}") from None
    if len(w) != 6 or min(w) < 1:
        raise FacelabError(f"mask widths must be six comma-separated positive numbers, not {text!r}")
    return w


def config_from_state(state: dict, where: Path) -> MaskConfig:
    try:
        known = {f.name for f in fields(MaskConfig)}
        return MaskConfig(**{k: v for k, v in dict(state["mask"]).items() if k in known})
    except (KeyError, TypeError, ValueError) as e:
        raise FacelabError(f"{where}: not a facelab mask model ({type(e).__name__}: {e})") from e


class MaskModel:
    """A trained mask network in eval mode."""

    resolution = RESOLUTION
    face_type = "whole_face"

    def __init__(self, net: MaskNet, cfg: MaskConfig, name: str, iteration: int) -> None:
        self.net = net.eval().requires_grad_(False)
        self.cfg, self.name, self.iteration = cfg, name, iteration

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: str | torch.device) -> MaskModel:
        self.net.to(device)
        return self

    @torch.inference_mode()
    def predict_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 256, 256) float RGB in [0, 1] on the model's device -> (N, 1, 256, 256) probabilities (for merge,
        where the swapped faces are already tensors)."""
        return torch.sigmoid(self.net(x.float()))

    def predict(self, images: np.ndarray, batch: int = 16) -> np.ndarray:
        """uint8 (N, 256, 256, 3) RGB aligned whole-face crops -> float32 (N, 256, 256) in [0, 1] (1 = face).
        Crops of another square size are resized to 256 px and their masks back."""
        imgs = np.asarray(images)
        if imgs.ndim == 3:
            imgs = imgs[None]
        if imgs.ndim != 4 or imgs.shape[3] != 3 or imgs.shape[1] != imgs.shape[2]:
            raise ValueError(f"predict expects (N, S, S, 3) RGB crops, got {imgs.shape}")
        side = imgs.shape[1]
        if side != RESOLUTION:
            interp = cv2.INTER_AREA if side > RESOLUTION else cv2.INTER_CUBIC
            imgs = np.stack([cv2.resize(im, (RESOLUTION, RESOLUTION), interpolation=interp) for im in imgs])
        out = np.empty((len(imgs), RESOLUTION, RESOLUTION), np.float32)
        for s in range(0, len(imgs), batch):
            x = torch.from_numpy(np.ascontiguousarray(imgs[s : s + batch].transpose(0, 3, 1, 2)))
            x = x.to(self.device).float() / 255.0
            out[s : s + batch] = self.predict_tensor(x)[:, 0].float().cpu().numpy()
        if side != RESOLUTION:
            out = np.stack([cv2.resize(m, (side, side), interpolation=cv2.INTER_LINEAR) for m in out])
        return out


def load_mask_model(path: str | Path, device: str | torch.device = "cpu") -> MaskModel:
    """The mask model in the folder ``path`` (from ``facelab mask train``); a one-line FacelabError naming it when
    it is missing, not a mask model or corrupt."""
    path = Path(path)
    if path.is_file():
        raise FacelabError(f"{path}: a mask model is a folder written by 'facelab mask train', not a file")
    if not path.exists():
        raise FacelabError(f"{path}: no such mask model (train one with 'facelab mask train')")
    try:
        ck = checkpoint.require(path, "no trained mask model here (run 'facelab mask train' first)")
    except FacelabError as e:
        raise FacelabError(str(e).splitlines()[0]) from e
    cfg = config_from_state(ck.state, path)
    net = MaskNet(parse_widths(cfg.widths))
    try:
        net.load_state_dict(checkpoint.submodule(ck.model, "net"))
    except RuntimeError as e:
        raise FacelabError(f"{path}: mask model weights do not fit its config ({str(e).splitlines()[0]})") from e
    return MaskModel(net, cfg, path.resolve().name, int(ck.state.get("iteration", 0))).to(device)
