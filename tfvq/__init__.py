"""tfvq: a TensorFlow/Keras model zoo for discrete (vector-quantised) autoencoders.

Implements Hierarchical Quantized Autoencoders (Williams et al., 2020) and
Relaxed-Responsibility Hierarchical Discrete VAEs (Willetts et al.).

Importing tfvq before TensorFlow runs its first operation turns on
TensorFlow's BFC allocator for CPU memory (`TF_CPU_ALLOCATOR_USE_BFC=true`,
unless the variable is already set). The quantizers' `[N, K]` tensors are
hundreds of megabytes; with the default allocator every one of them is fresh
memory from the operating system and page faults cost more than the
arithmetic (2-3x slower steps, see `benchmarks/`).
"""

import os

os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

__version__ = "0.1.0"
