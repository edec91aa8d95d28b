"""Deployment exports: TF Serving SavedModels and TFLite encoders (`tfvq.export.saved_model`,
`tfvq.export.tflite`)."""

from tfvq.export.saved_model import custom_ops, export_saved_model, graph_ops, signature_name

__all__ = ["custom_ops", "export_saved_model", "graph_ops", "signature_name"]
