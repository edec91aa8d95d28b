"""tfvq: a TensorFlow/Keras model zoo for discrete (vector-quantised) autoencoders.

Implements Hierarchical Quantized Autoencoders (Williams et al., 2020) and
Relaxed-Responsibility Hierarchical Discrete VAEs (Willetts et al.).

Importing tfvq before TensorFlow is imported sets two CPU defaults (each only
if the environment variable is not already set):

* `TF_CPU_ALLOCATOR_USE_BFC=true`: TensorFlow's BFC allocator for CPU memory.
  The quantizers' `[N, K]` tensors are hundreds of megabytes; with the default
  allocator each is fresh memory from the operating system, and page faults
  cost more than the arithmetic (2-3x slower, see `benchmarks/`).
* `TF_ENABLE_ONEDNN_OPTS=1`: oneDNN kernels, which TensorFlow turns on by
  default only on some Intel CPUs (1.5x faster HQA training steps here).
"""

import os

os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
