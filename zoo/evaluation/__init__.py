"""vaezoo.evaluation (torch-free, numpy): the sample-quality and disentanglement metrics of `vaezoo evaluate`.

metrics.py   Fréchet distance, k-NN KL (sKL), the aggregate posterior as a Gaussian mixture, leakage
regions.py   LP / HP samples (low aggregate-posterior / low prior density) through a pipeline
features.py  the FID-LeNet classifier's ONNX graph (logits and penultimate features)
disentanglement.py  MIG, the FactorVAE score and DCI of codes against ground-truth factors (sprites)
suite.py     what `vaezoo evaluate --metrics ...` runs, with the protocol beside each number
"""
