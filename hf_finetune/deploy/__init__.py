"""From a trained model folder to deployment: fast batch prediction (PyTorch or ONNX Runtime), image inputs,
and `hf-finetune export` to ONNX (fp32 and dynamic int8) with a parity report written at export time.

Modules: `backends` (one forward pass, PyTorch or ONNX Runtime), `postprocess` (logits -> the rows `predict`
writes), `predictor` (length-sorted batches, progress, throughput), `image_inputs` (image files, folders and
lists of paths, unreadable images reported per row), `export` and `parity` (the export and its checks),
`commands` (the `predict`, `evaluate` and `export` command bodies the CLI hooks call).
"""
