"""Building blocks shared by the models: running input normalisation (HQA App. C.1),
weight-normalised convolutions (Salimans & Kingma 2016) and the ResNet VAE residual block
(Kingma et al. 2016 (IAF) ResNet VAE, RRVQ App. C)."""

import keras
import tensorflow as tf

from tfvq.layers import ops


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

    Mixed precision: the statistics are float32 variables read as float32
    (`autocast=False`) and the batch moments are summed in float32 (a 16-bit
    sum of 10^5 squares loses most of its digits); the normalised output is
    cast back to the input's dtype.

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
        kw = dict(trainable=False, aggregation="only_first_replica", autocast=False)
        self.mean = self.add_weight(name="mean", shape=(channels,), initializer="zeros", **kw)
        self.variance = self.add_weight(name="variance", shape=(channels,), initializer="ones", **kw)
        self.count = self.add_weight(name="count", shape=(), initializer="zeros", **kw)

    def call(self, inputs, training=None):
        inputs = tf.convert_to_tensor(inputs)
        x = tf.cast(inputs, self.mean.dtype)  # float32 statistics under mixed precision
        if training:
            flat = tf.reshape(x, [-1, x.shape[-1]])
            n = ops.all_reduce_sum(tf.cast(tf.shape(flat)[0], x.dtype))
            total = ops.all_reduce_sum(tf.reduce_sum(flat, axis=0))
            total_sq = ops.all_reduce_sum(tf.reduce_sum(tf.square(flat), axis=0))
            mean = total / tf.maximum(n, 1.0)
            var = tf.maximum(total_sq / tf.maximum(n, 1.0) - tf.square(mean), 0.0)
            # The first batch sets the statistics; later ones are averaged in.
            m = tf.where(self.count > 0, tf.cast(self.momentum, x.dtype), 0.0)
            self.mean.assign(m * self.mean + (1.0 - m) * mean)
            self.variance.assign(m * self.variance + (1.0 - m) * var)
            self.count.assign_add(1.0)
        return tf.cast((x - self.mean) * tf.math.rsqrt(self.variance + self.epsilon), inputs.dtype)

    def denormalize(self, x):
        """Inverse of `call` with the current running statistics (in float32; returned in `x`'s dtype)."""
        x = tf.convert_to_tensor(x)
        y = tf.cast(x, self.mean.dtype) * tf.sqrt(self.variance + self.epsilon) + self.mean
        return tf.cast(y, x.dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum, "epsilon": self.epsilon})
        return config


def _pair(value, name):
    """`3 -> (3, 3)`; a pair of positive ints is returned as a tuple."""
    if isinstance(value, int):
        value = (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2 or min(value) < 1:
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value}")
    return value


def _seeded_initializer(initializer, seed):
    """`keras.initializers.get`, with `seed` put into a seedable initializer."""
    init = keras.initializers.get(initializer)
    if seed is not None:
        config = init.get_config()
        if "seed" in config:
            config["seed"] = int(seed)
            init = init.__class__.from_config(config)
    return init


def upsample_nearest2(x):
    """Nearest-neighbour 2x upsampling of NHWC `x`: the differentiable identity-path rescale of RRVQ App. C."""
    return tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)


@keras.saving.register_keras_serializable(package="tfvq")
class WeightNormConv2D(keras.layers.Layer):
    """2-D convolution with weight normalisation (Salimans & Kingma 2016).

    The kernel is reparameterised as `kernel = g * v / ||v||`: a direction `v`
    with the kernel's shape and a scale `g` per output channel, the norm being
    taken over every axis of `v` except the output-channel axis. That axis is
    the last one for a convolution (`v: [kh, kw, in, filters]`) and the third
    for a transposed convolution (`v: [kh, kw, filters, in]`, the layout of
    `tf.nn.conv2d_transpose`). Weight-normalised convolutions build the
    Kingma et al. 2016 (IAF) ResNet VAE and the RRVQ App. C encoders and
    decoders. Keras 3 has no such layer (tfp's `WeightNorm` wraps Keras 2 only).

    `g` starts at `||v||` of the initial `v`, so the initial effective kernel
    is exactly `v` as drawn by `kernel_initializer`; there is no data-dependent
    initialisation. Under mixed precision `v`, `g` and the bias are float32
    variables read as float32 (`autocast=False`): `||v||` and the kernel are
    formed in float32 and the kernel is cast to the compute dtype for the
    convolution. Padding is always "same": a convolution maps `[B, H, W, C]`
    to `[B, ceil(H / sh), ceil(W / sw), filters]`, a transposed convolution to
    `[B, H * sh, W * sw, filters]`, e.g. `[8, 4, 4, 16] -> [8, 8, 8, 32]` for
    `WeightNormConv2D(32, 3, strides=2, transpose=True)`.

    Args:
      filters: number of output channels.
      kernel_size: int or pair `(kh, kw)`.
      strides: int or pair `(sh, sw)`.
      transpose: a transposed convolution (upsamples by `strides`) if True.
      use_bias: add a per-channel bias `bias: [filters]` (initialised to 0).
      kernel_initializer: initializer of `v`, default "he_normal" (variance
        `2 / fan_in`). Because `g` starts at `||v||`, this is also the
        distribution of the initial effective kernel, so the usual
        variance-preserving choice carries over unchanged.
      seed: int seed put into a seedable `kernel_initializer`, or None.
      **kwargs: passed to `keras.layers.Layer`.

    Example:
    >>> layer = WeightNormConv2D(4, 3, strides=2, transpose=True, seed=0)
    >>> layer(tf.zeros([2, 5, 5, 3])).shape
    TensorShape([2, 10, 10, 4])

    References:
      Salimans & Kingma 2016, "Weight Normalization: A Simple
      Reparameterization to Accelerate Training of Deep Neural Networks".
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        transpose=False,
        use_bias=True,
        kernel_initializer="he_normal",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.transpose = bool(transpose)
        self.use_bias = bool(use_bias)
        self.seed = None if seed is None else int(seed)
        self.kernel_initializer = _seeded_initializer(kernel_initializer, self.seed)

    @property
    def _out_axis(self):
        return 2 if self.transpose else 3

    @property
    def _norm_axes(self):
        return (0, 1, 3) if self.transpose else (0, 1, 2)

    def _direction_norm(self, v):
        """`||v||` per output channel, shape `[filters]`."""
        sq = tf.reduce_sum(tf.square(v), axis=self._norm_axes)
        return tf.sqrt(tf.maximum(sq, 1e-24))

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"{self.name}: the channel dimension of the input must be known")
        kh, kw = self.kernel_size
        if self.transpose:
            shape = (kh, kw, self.filters, int(channels))
        else:
            shape = (kh, kw, int(channels), self.filters)
        self.v = self.add_weight(name="v", shape=shape, initializer=self.kernel_initializer, autocast=False)

        # g = ||v_init||: the initial effective kernel is v itself.
        def g_init(shape, dtype=None):
            return tf.cast(self._direction_norm(tf.convert_to_tensor(self.v)), dtype or "float32")

        self.g = self.add_weight(name="g", shape=(self.filters,), initializer=g_init, autocast=False)
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros", autocast=False)
        else:
            self.bias = None

    @property
    def kernel(self):
        """The effective kernel `g * v / ||v||`, with `v`'s shape and dtype."""
        v = tf.convert_to_tensor(self.v)
        scale = tf.convert_to_tensor(self.g) / self._direction_norm(v)
        if self.transpose:
            scale = tf.reshape(scale, [1, 1, self.filters, 1])
        return v * scale

    def call(self, inputs):
        x = tf.convert_to_tensor(inputs)
        kernel = tf.cast(self.kernel, x.dtype)
        strides = (1, *self.strides, 1)
        if self.transpose:
            dyn = tf.shape(x)
            rows = x.shape[1] if x.shape[1] is not None else dyn[1]
            cols = x.shape[2] if x.shape[2] is not None else dyn[2]
            out_shape = tf.stack(
                [dyn[0], rows * self.strides[0], cols * self.strides[1], self.filters]
            )
            y = tf.nn.conv2d_transpose(x, kernel, out_shape, strides, padding="SAME")
        else:
            y = tf.nn.conv2d(x, kernel, strides, padding="SAME")
        if self.bias is not None:
            y = y + tf.cast(self.bias, y.dtype)
        return y

    def compute_output_shape(self, input_shape):
        batch, rows, cols = input_shape[0], input_shape[1], input_shape[2]

        def resize(size, stride):
            if size is None:
                return None
            return size * stride if self.transpose else -(-size // stride)

        return (batch, resize(rows, self.strides[0]), resize(cols, self.strides[1]), self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "transpose": self.transpose,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="tfvq")
class ResNetBlock(keras.layers.Layer):
    """Pre-activation residual block of the Kingma et al. 2016 (IAF) ResNet VAE.

    `y = identity(x) + residual_scale * conv2(elu(conv1(elu(x))))`, with both
    convolutions 3x3 `WeightNormConv2D`s (Salimans & Kingma 2016) of
    `channels` outputs, as in the encoder and decoder stacks of RRVQ App. C.

    Resampling (RRVQ App. C: "the identity path of the network performs a
    differentiable rescaling operation"):

    * `None`: both convolutions have stride 1 and the identity is `x`.
    * `"down"`: `conv1` is an ordinary stride-2 convolution (also when
      `transpose=True`: a transposed convolution cannot downsample) and the
      identity is 2x2 average pooling with stride 2 ("same" padding, so odd
      sizes give `ceil(H / 2)` like the convolution, edge windows averaging
      only the pixels inside the image). `[B, 8, 8, C] -> [B, 4, 4, channels]`.
    * `"up"`: `conv1` is a stride-2 transposed convolution and the identity is
      nearest-neighbour 2x upsampling. `[B, 4, 4, C] -> [B, 8, 8, channels]`.

    If the input has `C != channels` channels, the identity path ends with a
    1x1 `WeightNormConv2D` projection (applied after the rescaling).

    Args:
      channels: output channels of both convolutions and of the block.
      resample: None, "down" or "up".
      transpose: use transposed convolutions for the stride-1 convolutions too
        (RRVQ App. C decoder blocks "each use a transposed convolution
        internally"). `conv1` of an "up" block is transposed either way.
      residual_scale: multiplies the residual branch, as the IAF ResNet VAE
        does, so that at initialisation each block adds a small update to its
        identity path and stacks of 64 blocks stay stable.
      seed: int seed of the convolutions' initializers (`seed`, `seed + 1`,
        `seed + 2` for conv1, conv2 and the projection), or None.
      **kwargs: passed to `keras.layers.Layer`.

    Example:
    >>> block = ResNetBlock(8, resample="down", seed=0)
    >>> block(tf.zeros([2, 6, 6, 3])).shape
    TensorShape([2, 3, 3, 8])

    References:
      Kingma et al. 2016 (IAF), "Improved Variational Inference with Inverse
      Autoregressive Flow", ResNet VAE; RRVQ App. C.
    """

    def __init__(
        self, channels, resample=None, transpose=False, residual_scale=0.1, seed=None, **kwargs
    ):
        super().__init__(**kwargs)
        if resample not in (None, "down", "up"):
            raise ValueError(f"resample must be None, 'down' or 'up', got {resample!r}")
        self.channels = int(channels)
        self.resample = resample
        self.transpose = bool(transpose)
        self.residual_scale = float(residual_scale)
        self.seed = None if seed is None else int(seed)

        def sub_seed(i):
            return None if self.seed is None else self.seed + i

        if resample == "down":
            conv1_args = dict(strides=2, transpose=False)
        elif resample == "up":
            conv1_args = dict(strides=2, transpose=True)
        else:
            conv1_args = dict(strides=1, transpose=self.transpose)
        self.conv1 = WeightNormConv2D(
            self.channels, 3, seed=sub_seed(0), name="conv1", **conv1_args
        )
        self.conv2 = WeightNormConv2D(
            self.channels, 3, transpose=self.transpose, seed=sub_seed(1), name="conv2"
        )
        self._projection_seed = sub_seed(2)
        self.projection = None

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self.conv1.build(input_shape)
        hidden_shape = self.conv1.compute_output_shape(input_shape)
        self.conv2.build(hidden_shape)
        if input_shape[-1] != self.channels:
            self.projection = WeightNormConv2D(
                self.channels, 1, seed=self._projection_seed, name="projection"
            )
            self.projection.build(hidden_shape[:-1] + (input_shape[-1],))

    def identity(self, inputs):
        """The identity path alone: rescaling, then the projection if any."""
        x = tf.convert_to_tensor(inputs)
        if self.resample == "down":
            x = tf.nn.avg_pool2d(x, ksize=2, strides=2, padding="SAME")
        elif self.resample == "up":
            x = upsample_nearest2(x)
        if self.projection is not None:
            x = self.projection(x)
        return x

    def call(self, inputs):
        x = tf.convert_to_tensor(inputs)
        h = self.conv1(tf.nn.elu(x))
        h = self.conv2(tf.nn.elu(h))
        return self.identity(x) + tf.cast(self.residual_scale, h.dtype) * h

    def compute_output_shape(self, input_shape):
        return self.conv1.compute_output_shape(tuple(input_shape))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "channels": self.channels,
                "resample": self.resample,
                "transpose": self.transpose,
                "residual_scale": self.residual_scale,
                "seed": self.seed,
            }
        )
        return config
