"""`vaezoo export-web`: a static page that runs a model's ONNX graphs in the browser (torch-free)."""
