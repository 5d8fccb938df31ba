"""Swap networks (SAEHD DF/LIAE) and the discriminators used by its optional losses."""

from facelab.models.discriminators import CodeDiscriminator, UNetPatchDiscriminator
from facelab.models.saehd import (
    SAEHD,
    ModelConfigError,
    SwapModule,
    parse_archi,
    validate,
)

__all__ = [
    "SAEHD",
    "CodeDiscriminator",
    "ModelConfigError",
    "SwapModule",
    "UNetPatchDiscriminator",
    "parse_archi",
    "validate",
]
