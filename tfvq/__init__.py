"""tfvq: a TensorFlow/Keras model zoo for discrete (vector-quantised) autoencoders.

Implements Hierarchical Quantized Autoencoders (Williams et al., 2020) and
Relaxed-Responsibility Hierarchical Discrete VAEs (Willetts et al.).
"""

__version__ = "0.1.0"
