"""WeightNormConv2D and ResNetBlock checked against NumPy and TF oracles."""

import tfvq  # noqa: F401  (sets the CPU allocator before TensorFlow starts)

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq.layers import ResNetBlock, WeightNormConv2D

RNG = np.random.default_rng(2)
TOL = dict(rtol=1e-5, atol=1e-5)


def images(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def built_conv(in_ch=3, filters=4, transpose=False, strides=1, kernel_size=3, randomise=True):
    layer = WeightNormConv2D(filters, kernel_size, strides=strides, transpose=transpose, seed=0)
    layer.build((None, 5, 5, in_ch))
    if randomise:  # move away from the g = ||v|| initialisation and the zero bias
        layer.g.assign(RNG.uniform(0.5, 2.0, size=(filters,)).astype(np.float32))
        layer.bias.assign(RNG.normal(size=(filters,)).astype(np.float32))
    return layer


def np_effective_kernel(v, g, transpose):
    axes = (0, 1, 3) if transpose else (0, 1, 2)
    norm = np.sqrt((v.astype(np.float64) ** 2).sum(axis=axes, keepdims=True))
    g = g.reshape((1, 1, -1, 1) if transpose else (1, 1, 1, -1))
    return (g * v / norm).astype(np.float32)


@pytest.mark.parametrize("transpose", [False, True], ids=["conv", "transpose"])
def test_kernel_is_g_times_v_over_norm_of_v(transpose):
    layer = built_conv(transpose=transpose)
    want = np_effective_kernel(layer.v.numpy(), layer.g.numpy(), transpose)
    np.testing.assert_allclose(layer.kernel.numpy(), want, **TOL)


@pytest.mark.parametrize("transpose", [False, True], ids=["conv", "transpose"])
def test_initial_kernel_equals_v(transpose):
    layer = built_conv(transpose=transpose, randomise=False)
    np.testing.assert_allclose(layer.kernel.numpy(), layer.v.numpy(), **TOL)
    np.testing.assert_allclose(layer.bias.numpy(), 0.0)


def test_transposed_norm_is_per_output_channel():
    layer = built_conv(in_ch=3, filters=4, transpose=True)
    assert layer.v.shape == (3, 3, 4, 3)  # [kh, kw, out, in]
    kernel = layer.kernel.numpy()
    per_out = np.sqrt((kernel**2).sum(axis=(0, 1, 3)))
    np.testing.assert_allclose(per_out, layer.g.numpy(), **TOL)
    # The norm over the input axis instead is not g (the layout matters).
    per_in = np.sqrt((kernel**2).sum(axis=(0, 1, 2)))
    assert per_in.shape == (3,) and not np.allclose(per_in, layer.g.numpy()[:3])


def test_conv_norm_is_per_output_channel():
    layer = built_conv(in_ch=3, filters=4, transpose=False)
    assert layer.v.shape == (3, 3, 3, 4)  # [kh, kw, in, out]
    per_out = np.sqrt((layer.kernel.numpy() ** 2).sum(axis=(0, 1, 2)))
    np.testing.assert_allclose(per_out, layer.g.numpy(), **TOL)


@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("transpose", [False, True], ids=["conv", "transpose"])
def test_output_matches_tf_conv_with_numpy_kernel(transpose, strides):
    layer = built_conv(in_ch=3, filters=4, transpose=transpose, strides=strides)
    x = images(2, 5, 5, 3)
    kernel = np_effective_kernel(layer.v.numpy(), layer.g.numpy(), transpose)
    if transpose:
        want = tf.nn.conv2d_transpose(x, kernel, [2, 5 * strides, 5 * strides, 4], strides, "SAME")
    else:
        want = tf.nn.conv2d(x, kernel, strides, "SAME")
    want = want.numpy() + layer.bias.numpy()
    np.testing.assert_allclose(layer(x).numpy(), want, **TOL)


@pytest.mark.parametrize("transpose", [False, True], ids=["conv", "transpose"])
def test_scaling_v_leaves_output_unchanged(transpose):
    layer = built_conv(transpose=transpose, strides=2)
    x = images(2, 5, 5, 3)
    before = layer(x).numpy()
    layer.v.assign(layer.v * 7.5)
    np.testing.assert_allclose(layer(x).numpy(), before, **TOL)


@pytest.mark.parametrize(
    "transpose,strides,hw,want_hw",
    [(False, 1, 5, 5), (False, 2, 5, 3), (False, 2, 6, 3), (True, 1, 5, 5), (True, 2, 5, 10)],
)
def test_output_shapes(transpose, strides, hw, want_hw):
    layer = WeightNormConv2D(6, 3, strides=strides, transpose=transpose, seed=0)
    y = layer(images(2, hw, hw, 3))
    assert y.shape == (2, want_hw, want_hw, 6)
    assert layer.compute_output_shape((None, hw, hw, 3)) == (None, want_hw, want_hw, 6)
    assert layer.compute_output_shape((None, None, None, 3)) == (None, None, None, 6)


def test_use_bias_false_has_no_bias():
    layer = WeightNormConv2D(4, 1, use_bias=False, seed=0)
    layer.build((None, 2, 2, 3))
    assert layer.bias is None
    assert sorted(w.name for w in layer.trainable_weights) == ["g", "v"]
    np.testing.assert_allclose(layer(np.zeros((1, 2, 2, 3), np.float32)).numpy(), 0.0)


def test_seed_makes_initialisation_reproducible():
    a, b = WeightNormConv2D(4, 3, seed=5), WeightNormConv2D(4, 3, seed=5)
    a.build((None, 4, 4, 2))
    b.build((None, 4, 4, 2))
    np.testing.assert_array_equal(a.v.numpy(), b.v.numpy())


@pytest.mark.parametrize("transpose", [False, True], ids=["conv", "transpose"])
def test_gradients_reach_v_g_and_bias(transpose):
    layer = built_conv(transpose=transpose, strides=2)
    x = images(2, 5, 5, 3)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(x)))
    grads = tape.gradient(loss, [layer.v, layer.g, layer.bias])
    for var, grad in zip([layer.v, layer.g, layer.bias], grads):
        assert grad is not None, var.name
        assert grad.shape == var.shape
        assert np.all(np.isfinite(grad.numpy())) and np.any(grad.numpy() != 0), var.name
    # Weight norm: the gradient of v is orthogonal to v, per output channel.
    axes = (0, 1, 3) if transpose else (0, 1, 2)
    dots = (grads[0].numpy() * layer.v.numpy()).sum(axis=axes)
    np.testing.assert_allclose(dots, 0.0, atol=1e-3)


# --- ResNetBlock -------------------------------------------------------------


@pytest.mark.parametrize(
    "resample,in_ch,channels,hw,want_hw",
    [
        (None, 4, 4, 6, 6),
        (None, 3, 5, 6, 6),
        ("down", 4, 4, 6, 3),
        ("down", 3, 5, 7, 4),
        ("up", 4, 4, 3, 6),
        ("up", 3, 5, 3, 6),
    ],
)
@pytest.mark.parametrize("transpose", [False, True], ids=["conv", "transpose"])
def test_resnet_block_shapes(resample, in_ch, channels, hw, want_hw, transpose):
    block = ResNetBlock(channels, resample=resample, transpose=transpose, seed=0)
    y = block(images(2, hw, hw, in_ch))
    assert y.shape == (2, want_hw, want_hw, channels)
    assert block.compute_output_shape((None, hw, hw, in_ch)) == (None, want_hw, want_hw, channels)
    assert (block.projection is not None) == (in_ch != channels)


def test_resnet_block_uses_transposed_convs_when_asked():
    up = ResNetBlock(4, resample="up")
    assert up.conv1.transpose and up.conv1.strides == (2, 2) and not up.conv2.transpose
    dec = ResNetBlock(4, transpose=True)
    assert dec.conv1.transpose and dec.conv2.transpose
    down = ResNetBlock(4, resample="down", transpose=True)
    assert not down.conv1.transpose and down.conv1.strides == (2, 2) and down.conv2.transpose
    with pytest.raises(ValueError, match="resample"):
        ResNetBlock(4, resample="sideways")


def np_avg_pool_2x2(x):
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def np_nearest_up_2x(x):
    return x.repeat(2, axis=1).repeat(2, axis=2)


@pytest.mark.parametrize(
    "resample,oracle",
    [(None, lambda x: x), ("down", np_avg_pool_2x2), ("up", np_nearest_up_2x)],
)
def test_zero_residual_scale_gives_identity_path(resample, oracle):
    x = images(2, 4, 4, 3)
    block = ResNetBlock(3, resample=resample, residual_scale=0.0, seed=0)
    np.testing.assert_allclose(block(x).numpy(), oracle(x), **TOL)


@pytest.mark.parametrize("resample,oracle", [("down", np_avg_pool_2x2), ("up", np_nearest_up_2x)])
def test_zero_residual_scale_with_projection(resample, oracle):
    x = images(2, 4, 4, 3)
    block = ResNetBlock(5, resample=resample, residual_scale=0.0, seed=0)
    block.build(x.shape)
    proj = block.projection
    proj.bias.assign(RNG.normal(size=(5,)).astype(np.float32))
    kernel = np_effective_kernel(proj.v.numpy(), proj.g.numpy(), False)[0, 0]  # [3, 5]
    want = oracle(x) @ kernel + proj.bias.numpy()
    np.testing.assert_allclose(block(x).numpy(), want, **TOL)


def test_resnet_block_residual_branch_oracle():
    x = images(2, 4, 4, 3)
    block = ResNetBlock(3, residual_scale=0.25, seed=0)
    block.build(x.shape)
    elu = lambda t: tf.nn.elu(t).numpy()  # noqa: E731
    h = tf.nn.conv2d(elu(x), block.conv1.kernel, 1, "SAME").numpy() + block.conv1.bias.numpy()
    h = tf.nn.conv2d(elu(h), block.conv2.kernel, 1, "SAME").numpy() + block.conv2.bias.numpy()
    np.testing.assert_allclose(block(x).numpy(), x + 0.25 * h, **TOL)


def test_resnet_block_gradients_reach_every_variable():
    block = ResNetBlock(5, resample="up", transpose=True, seed=0)
    x = tf.constant(images(2, 3, 3, 3))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(block(x)))
    grads = tape.gradient(loss, block.trainable_weights)
    assert len(block.trainable_weights) == 9  # conv1, conv2, projection: v, g, bias each
    assert all(g is not None and np.any(g.numpy() != 0) for g in grads)


# --- Serialisation, tf.function, distribution ---------------------------------


def small_model():
    inputs = keras.Input((8, 8, 3))
    h = WeightNormConv2D(4, 3, strides=2, seed=1)(inputs)
    h = ResNetBlock(6, resample="down", seed=2)(h)
    h = ResNetBlock(6, resample="up", transpose=True, residual_scale=0.3, seed=3)(h)
    h = WeightNormConv2D(2, (3, 1), strides=(2, 1), transpose=True, use_bias=False, seed=4)(h)
    return keras.Model(inputs, h)


def test_keras_file_round_trip(tmp_path):
    model = small_model()
    assert model.output_shape == (None, 8, 4, 2)  # 8 -> 4 -> 2 -> 4 -> (8, 4)
    for w in model.weights:  # move every variable away from its initial value
        w.assign(w + RNG.normal(scale=0.1, size=w.shape).astype(np.float32))
    x = images(2, 8, 8, 3)
    path = str(tmp_path / "blocks.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), **TOL)
    layer = loaded.layers[-1]
    assert isinstance(layer, WeightNormConv2D)
    assert (layer.transpose, layer.strides, layer.kernel_size, layer.use_bias) == (
        True,
        (2, 1),
        (3, 1),
        False,
    )


def test_sequential_round_trip(tmp_path):
    model = keras.Sequential(
        [keras.Input((4, 4, 2)), ResNetBlock(3, seed=0), WeightNormConv2D(2, 1, seed=1)]
    )
    x = images(3, 4, 4, 2)
    path = str(tmp_path / "seq.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), **TOL)


def test_config_round_trip():
    block = ResNetBlock(4, resample="up", transpose=True, residual_scale=0.2, seed=9, name="b")
    clone = ResNetBlock.from_config(block.get_config())
    assert clone.get_config() == block.get_config()
    conv = WeightNormConv2D(3, (1, 3), strides=(1, 2), transpose=True, use_bias=False, seed=4)
    clone = WeightNormConv2D.from_config(conv.get_config())
    assert clone.get_config() == conv.get_config()


def test_works_in_tf_function_with_unknown_batch_and_size():
    conv = WeightNormConv2D(4, 3, strides=2, transpose=True, seed=0)
    block = ResNetBlock(4, resample="up", transpose=True, seed=1)
    spec = tf.TensorSpec([None, None, None, 3], tf.float32)

    @tf.function(input_signature=[spec])
    def f(x):
        return block(conv(x))

    for batch, hw in [(1, 2), (3, 3)]:
        x = images(batch, hw, hw, 3)
        y = f(x)
        assert y.shape == (batch, 4 * hw, 4 * hw, 4)
        np.testing.assert_allclose(y.numpy(), block(conv(x)).numpy(), **TOL)
    static = f.get_concrete_function().structured_outputs.shape
    assert static.as_list() == [None, None, None, 4]


def test_mirrored_strategy_train_step(mirrored_strategy):
    with mirrored_strategy.scope():
        inputs = keras.Input((4, 4, 3))
        h = ResNetBlock(4, resample="down", seed=0)(inputs)
        h = ResNetBlock(3, resample="up", transpose=True, seed=1)(h)
        model = keras.Model(inputs, h)
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    conv = model.layers[1].conv1
    # g starts at ||v|| on every replica.
    local = mirrored_strategy.experimental_local_results
    assert len(local(conv.g.value)) == 2
    for g, v in zip(local(conv.g.value), local(conv.v.value)):
        np.testing.assert_allclose(g.numpy(), np.sqrt((v.numpy() ** 2).sum(axis=(0, 1, 2))), **TOL)
    before = [w.numpy() for w in model.trainable_weights]
    x = images(4, 4, 4, 3)
    history = model.fit(x, x, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = [w.numpy() for w in model.trainable_weights]
    assert all(np.any(a != b) for a, b in zip(after, before))
    first, second = local(conv.g.value)  # replicas stay in sync
    np.testing.assert_array_equal(first.numpy(), second.numpy())
