"""Deployment exports: TF Serving SavedModels, TFLite encoders and TFLite decoders (`tfvq.export.saved_model`,
`tfvq.export.tflite`, `tfvq.export.tflite_decoders`)."""

from tfvq.export.saved_model import custom_ops, export_saved_model, graph_ops, signature_name

FORMATS = ("saved_model", "tflite", "decoders")
"""What a model exports to: a TF Serving SavedModel (`saved_model`), TFLite encoders and decoders (`tflite`), or
the TFLite decoders alone (`decoders`: no images needed)."""

__all__ = ["FORMATS", "custom_ops", "export_saved_model", "graph_ops", "signature_name"]
