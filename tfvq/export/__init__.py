"""Deployment exports: TF Serving SavedModels and TFLite encoders (`tfvq.export.saved_model`,
`tfvq.export.tflite`)."""

from tfvq.export.saved_model import custom_ops, export_saved_model, graph_ops, signature_name

FORMATS = ("saved_model", "tflite")
"""What a model exports to: a TF Serving SavedModel (`saved_model`) and TFLite encoders (`tflite`)."""

__all__ = ["FORMATS", "custom_ops", "export_saved_model", "graph_ops", "signature_name"]
