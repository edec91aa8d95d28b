"""What a discrete model's codes look like (`tfvq.code_layout.CodeLayout`): the layers a file carries, its fixed
rate, and the layers it takes."""

import pytest

from tfvq.code_layout import CodeLayout, check_image_shape

# HQA-like: each layer decodes alone (Algorithm 3); RRVQ-like: a file of layer l carries layers l..L (eq. 3).
ALONE = CodeLayout(((4, 4), (2, 2), (1, 1)), (256, 5, 1), default_layer=3, cumulative=False)
CUMULATIVE = CodeLayout(((4, 4), (2, 2), (1, 1)), (256, 5, 1), default_layer=1, cumulative=True)


def test_the_layers_sent_and_the_fixed_rate_of_each_kind():
    assert ALONE.num_layers == 3
    assert [ALONE.layers_sent(l) for l in (1, 2, 3)] == [(1,), (2,), (3,)]
    assert [CUMULATIVE.layers_sent(l) for l in (1, 2, 3)] == [(1, 2, 3), (2, 3), (3,)]
    # h w ceil(log2 K) per layer sent; a codebook of one code still costs a bit.
    assert [ALONE.bits(l) for l in (1, 2, 3)] == [16 * 8, 4 * 3, 1]
    assert [CUMULATIVE.bits(l) for l in (1, 2, 3)] == [128 + 12 + 1, 12 + 1, 1]
    assert ALONE.bits() == ALONE.bits(3) and CUMULATIVE.bits() == CUMULATIVE.bits(1)


@pytest.mark.parametrize("layer", [0, 4, -1, 1.0, "1", True, None])
def test_a_layer_is_an_integer_in_1_to_l(layer):
    if layer is None:
        assert ALONE.check_layer(layer) == 3
        return
    with pytest.raises(ValueError, match=r"layer must be an integer in 1\.\.3"):
        ALONE.check_layer(layer)


def test_check_image_shape_takes_multiples_of_the_stride_with_the_models_channels():
    assert check_image_shape([64, 96, 1], (32, 32, 1), 32) == (64, 96, 1)
    for bad in ((48, 96, 1), (64, 96, 3), (0, 32, 1), (64, 96)):
        with pytest.raises(ValueError, match=r"\(H, W, 1\) with H and W positive multiples of the model's stride 32"):
            check_image_shape(bad, (32, 32, 1), 32)
