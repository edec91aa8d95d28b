"""Building blocks shared by the models: running input normalisation (HQA App. C.1)."""

import keras
import tensorflow as tf

from tfvq.layers.quantizers import all_reduce_sum


@keras.saving.register_keras_serializable(package="tfvq")
class RunningNormalization(keras.layers.Layer):
    """Per-channel normalisation by running statistics, with its inverse.

    HQA App. C.1: "The input z_e to layers 2 and above are normalized using
    running statistics, which was shown to stabilise training"; the layer's
    decoder output is mapped back with `denormalize`. In training the running
    mean and variance follow exponential moving averages of the batch
    statistics (summed over replicas first, so every replica holds the same
    statistics), and the input is normalised with the updated running values;
    at inference the running values are used as they are.

    Args:
      momentum: EMA decay of the running statistics.
      epsilon: added to the variance.
    """

    def __init__(self, momentum=0.99, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        channels = input_shape[-1]
        kw = dict(trainable=False, aggregation="only_first_replica")
        self.mean = self.add_weight(name="mean", shape=(channels,), initializer="zeros", **kw)
        self.variance = self.add_weight(name="variance", shape=(channels,), initializer="ones", **kw)
        self.count = self.add_weight(name="count", shape=(), initializer="zeros", **kw)

    def call(self, inputs, training=None):
        x = tf.convert_to_tensor(inputs)
        if training:
            flat = tf.reshape(x, [-1, x.shape[-1]])
            n = all_reduce_sum(tf.cast(tf.shape(flat)[0], x.dtype))
            total = all_reduce_sum(tf.reduce_sum(flat, axis=0))
            total_sq = all_reduce_sum(tf.reduce_sum(tf.square(flat), axis=0))
            mean = total / tf.maximum(n, 1.0)
            var = tf.maximum(total_sq / tf.maximum(n, 1.0) - tf.square(mean), 0.0)
            # The first batch sets the statistics; later ones are averaged in.
            m = tf.where(self.count > 0, tf.cast(self.momentum, x.dtype), 0.0)
            self.mean.assign(m * self.mean + (1.0 - m) * mean)
            self.variance.assign(m * self.variance + (1.0 - m) * var)
            self.count.assign_add(1.0)
        return (x - self.mean) * tf.math.rsqrt(self.variance + self.epsilon)

    def denormalize(self, x):
        """Inverse of `call` with the current running statistics."""
        return x * tf.sqrt(self.variance + self.epsilon) + self.mean

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum, "epsilon": self.epsilon})
        return config
