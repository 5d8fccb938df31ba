"""Measurement scripts for facelab, each runnable as ``python benchmarks/NAME.py`` from the repository root.

They read the real-media set at ``../shared/data`` (never copied into the repository) and print tables;
``annotations`` (landmark ground truth loaders) and ``common`` (CLI, tables, geometry helpers) are shared.
"""
