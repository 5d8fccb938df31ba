"""Errors that carry the one-line message the CLI prints (no traceback for user mistakes)."""

from __future__ import annotations


class FacelabError(Exception):
    """A problem with the user's input or environment; ``str(err)`` is the whole message."""


class MediaError(FacelabError):
    """A file that cannot be read as the image or video it claims to be."""


class FacesetError(FacelabError):
    """A faceset file or folder that is missing, foreign, or malformed."""


class UnsafePickleError(FacesetError):
    """A DFL metadata pickle that asks for anything other than plain data."""
