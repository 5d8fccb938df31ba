"""Merge stage: put swapped faces back into frames (mask modes and processing, paste, seamless, hist-match,
color match, sharpen, motion blur)."""
