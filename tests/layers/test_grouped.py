"""`GroupedQuantizer`: each group quantized by its own copy, codes in the composed layout (stage-major slots)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq.layers import (
    FiniteScalarQuantizer,
    GroupedQuantizer,
    LookupFreeQuantizer,
    ResidualQuantizer,
    VectorQuantizer,
)
from tfvq.layers.precision import precision_scope

RNG = np.random.default_rng(37)


def nearest(x, codebook):
    return ((x[:, None] - codebook[None]) ** 2).sum(-1).argmin(-1)


def test_grouped_vq_quantizes_each_group_with_its_own_codebook(built):
    gvq = built(GroupedQuantizer(VectorQuantizer(6, 2, commitment_cost=0.25, seed=3), 3))
    books = [g.codebook.numpy().astype(np.float64) for g in gvq.groups_]
    assert not np.allclose(books[0], books[1])  # different seeds: different starting codebooks
    assert [g.seed for g in gvq.groups_] == [3, 4, 5]
    z = RNG.normal(size=(4, 5, 6)).astype(np.float32)
    out = gvq(z)
    flat = z.reshape(-1, 6).astype(np.float64)
    codes = np.stack([nearest(flat[:, 2 * g:2 * g + 2], books[g]) for g in range(3)], -1)
    vectors = np.concatenate([books[g][codes[:, g]] for g in range(3)], -1)
    np.testing.assert_array_equal(out["codes"].numpy().reshape(-1, 3), codes)
    np.testing.assert_allclose(out["quantized"].numpy().reshape(-1, 6), vectors, atol=1e-6)
    want_loss = sum(1.25 * ((flat[:, 2 * g:2 * g + 2] - vectors[:, 2 * g:2 * g + 2]) ** 2).mean() for g in range(3))
    assert out["loss"].numpy() == pytest.approx(want_loss, rel=1e-5)
    np.testing.assert_allclose(gvq.lookup(out["codes"]).numpy(), vectors.reshape(4, 5, 6), atol=1e-6)
    np.testing.assert_array_equal(gvq.nearest_codes(z).numpy(), out["codes"].numpy())
    assert gvq.code_slots == 3 and gvq.num_stages == 1 and gvq.num_codes == 6


def test_grouped_residual_codes_are_stage_major_and_a_prefix_is_a_lower_rate(built):
    inner = ResidualQuantizer(FiniteScalarQuantizer((5, 5)), 3)
    grq = built(GroupedQuantizer(inner, 2))
    z = RNG.normal(size=(6, 4)).astype(np.float32)
    out = grq(z)
    assert out["codes"].shape == (6, 6) and grq.code_slots == 6 and out["perplexities"].shape == (6,)
    alone = [grq.groups_[g](z[:, 2 * g:2 * g + 2])["codes"].numpy() for g in range(2)]  # [6, 3] each
    for s in range(3):
        for g in range(2):
            np.testing.assert_array_equal(out["codes"].numpy()[:, s * 2 + g], alone[g][:, s])
    for k in (1, 2, 3):
        low = grq(z, num_quantizers=k)
        np.testing.assert_array_equal(low["codes"].numpy(), out["codes"].numpy()[:, :2 * k])
        np.testing.assert_array_equal(grq.lookup(low["codes"]).numpy(), low["quantized"].numpy())
        np.testing.assert_array_equal(grq.nearest_codes(z, num_quantizers=k).numpy(), low["codes"].numpy())


def test_dropout_drops_the_same_stages_in_every_group():
    grq = GroupedQuantizer(ResidualQuantizer(LookupFreeQuantizer(2), 3, dropout=True, seed=1), 3)
    out = grq(RNG.uniform(-2, 2, size=(30, 4, 6)).astype(np.float32), training=True)
    used = (out["codes"].numpy() >= 0).reshape(30, 4, 3, 3)  # [..., stage, group]
    assert (used == used[..., :1]).all()  # a stage is used in all groups or none
    assert set(used[:, 0, :, 0].sum(-1)) == {1, 2, 3}
    np.testing.assert_array_equal(grq.lookup(out["codes"]).numpy(), out["quantized"].numpy())


def test_seeds_of_grouped_residual_stages_are_all_different():
    grq = GroupedQuantizer(ResidualQuantizer(VectorQuantizer(4, 2, seed=10), 3, seed=20), 2)
    assert [[s.seed for s in g.stages] for g in grq.groups_] == [[10, 11, 12], [13, 14, 15]]
    assert [g.seed for g in grq.groups_] == [20, 23]


def test_bad_arguments_raise_errors_naming_what_was_expected():
    with pytest.raises(ValueError, match="groups must be an integer >= 1"):
        GroupedQuantizer(LookupFreeQuantizer(2), 0)
    gq = GroupedQuantizer(LookupFreeQuantizer(2), 3)
    with pytest.raises(ValueError, match=r"code_dim=6 \(3 groups of 2\)"):
        gq(tf.zeros([2, 4]))
    with pytest.raises(ValueError, match="residual inner quantizer"):
        gq(tf.zeros([2, 6]), num_quantizers=1)
    with pytest.raises(ValueError, match="k \\* 3 slots"):
        gq.lookup(tf.zeros([2, 4], tf.int32))
    with pytest.raises(ValueError, match="more groups"):
        GroupedQuantizer(gq, 2)


def test_config_keras_file_and_a_tiny_fit(keras_round_trip, fit_through):
    inner = ResidualQuantizer(VectorQuantizer(8, 2, ema=True, decay=0.9, seed=2), 2, dropout=True, seed=3)
    grq = GroupedQuantizer(inner, 2, name="grvq")
    config = grq.get_config()
    assert GroupedQuantizer.from_config(config).get_config() == config
    inputs = keras.Input((3, 4))
    model = keras.Model(inputs, grq(inputs))
    for group in grq.groups_:
        for stage in group.stages:
            stage.codebook.assign(RNG.normal(size=(8, 2)))
    keras_round_trip(model, grq, RNG.normal(size=(2, 3, 4)).astype(np.float32))
    x = RNG.normal(size=(128, 6)).astype(np.float32)
    history = fit_through(GroupedQuantizer(VectorQuantizer(16, 2, seed=1), 2), 4, x)
    assert np.all(np.isfinite(history)) and history[-1] < history[0]


def test_mixed_bfloat16_codes_equal_float32_codes_for_well_separated_inputs(built):
    corners = np.array([[1 if (k >> j) & 1 else -1 for j in range(2)] for k in range(4)], np.float32)
    with precision_scope("mixed_bfloat16"):
        mixed = built(GroupedQuantizer(VectorQuantizer(4, 2), 3))
    full = built(GroupedQuantizer(VectorQuantizer(4, 2), 3))
    for layer in (mixed, full):
        for group in layer.groups_:
            group.codebook.assign(corners)
    want = RNG.integers(0, 4, size=(20, 3))
    z = (np.concatenate([corners[want[:, g]] for g in range(3)], -1) + RNG.normal(size=(20, 6)) * 0.05)
    a, b = mixed(z.astype(np.float32)), full(z.astype(np.float32))
    assert a["quantized"].dtype == tf.bfloat16
    np.testing.assert_array_equal(a["codes"].numpy(), want)
    np.testing.assert_array_equal(b["codes"].numpy(), want)


def test_mirrored_ema_statistics_of_every_group_are_summed_over_replicas(mirrored_strategy, on_replicas, built):
    halves = [RNG.normal(size=(8, 4)).astype(np.float32), (RNG.normal(size=(8, 4)) + 1).astype(np.float32)]
    with mirrored_strategy.scope():
        gvq = built(GroupedQuantizer(VectorQuantizer(4, 2, ema=True, decay=0.9, seed=1), 2))
    on_replicas(lambda z: gvq(z, training=True)["loss"], halves)
    for group in gvq.groups_:
        sizes = [np.asarray(v) for v in mirrored_strategy.experimental_local_results(group.ema_cluster_size_hidden.value)]
        assert sizes[0].sum() == pytest.approx(0.1 * 16, rel=1e-5)  # (1 - decay) * the rows of both replicas
        np.testing.assert_array_equal(sizes[0], sizes[1])


def test_nearest_codes_of_composed_quantizers_convert_to_tflite_builtins(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    x = np.random.default_rng(5).normal(size=(1, 4, 4, 4)).astype(np.float32)  # fixed: no near-ties (checked)
    for name, q in [("grvq", GroupedQuantizer(ResidualQuantizer(VectorQuantizer(16, 2, seed=5), 2), 2)),
                    ("grfsq", GroupedQuantizer(ResidualQuantizer(FiniteScalarQuantizer((5, 5)), 3), 2))]:
        q.build((None, 4))
        archive = keras.export.ExportArchive()
        archive.track(q)
        archive.add_endpoint("encode", tf.function(q.nearest_codes, autograph=False), [tf.TensorSpec(x.shape)])
        archive.write_out(str(tmp_path / name), verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / name), signature_keys=["encode"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        interpreter = Interpreter(model_content=converter.convert())
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        np.testing.assert_array_equal(got, q.nearest_codes(x).numpy(), err_msg=name)
