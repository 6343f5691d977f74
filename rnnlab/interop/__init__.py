"""Interoperability with PyTorch and ONNX."""
