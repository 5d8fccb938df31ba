"""Which reduced precision a device runs natively: used by training (autocast) and merging (inference)."""

from __future__ import annotations

import torch


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 where the hardware has it (CUDA with bf16, CPUs with AMX or AVX512-BF16) for ``precision="auto"``;
    None means plain fp32."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision != "auto":
        raise ValueError(f"unknown precision {precision!r} (auto, bf16 or fp32)")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    cpu = torch.cpu
    native = (
        getattr(cpu, "_is_amx_tile_supported", lambda: False)()
        or getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
    )
    return torch.bfloat16 if native else None


def precision_label(precision: str, amp: torch.dtype | None) -> str:
    """What a start line prints: the setting and, for ``auto``, what it resolved to on this device."""
    name = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(amp, str(amp))
    return f"auto ({name} here)" if precision == "auto" else name
