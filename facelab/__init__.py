"""facelab: extract, train, merge and measure face swaps."""

__version__ = "0.1.0"
