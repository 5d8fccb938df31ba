"""Export stage: a trained swap model as a file other programs load (TorchScript today)."""

from facelab.export.stage import ExportResult, export_model

__all__ = ["ExportResult", "export_model"]
