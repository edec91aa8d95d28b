"""The autoencoders of implicit codebooks (`tfvq.models.quantized_ae.implicit_ae`): FSQ's codes are the mixed-radix
numbers of the bounded, rounded channels (Mentzer et al. 2023, §3.1) and LFQ's the binary numbers of their signs
(MAGVIT-v2 §3.1, eq. 3); FSQ trains on the MSE alone."""

import numpy as np
import pytest
import tensorflow as tf

from tfvq.models.quantized_ae import FSQAutoencoder, LFQAutoencoder


def test_fsq_codes_are_the_mixed_radix_numbers_of_the_rounded_channels(digits):
    model = FSQAutoencoder((32, 32, 1), levels=(3, 4, 5), encoder_hidden=8, decoder_hidden=8)
    assert model.code_layout().num_codes == (60,) and model.bits() == 16 * 16 * 6
    x = digits[:4]
    digit = np.round(model.fsq.bound(model.encoder(x)).numpy()).astype(np.int64) + np.array([1, 2, 2])
    assert digit.min() >= 0 and (digit < np.array([3, 4, 5])).all()
    want = digit[..., 0] + 3 * digit[..., 1] + 12 * digit[..., 2]  # channel 0 the least significant digit
    np.testing.assert_array_equal(model.encode(x).numpy(), want)
    terms = model.training_loss(x, training=False)
    assert float(terms["loss"]) == pytest.approx(float(terms["mse"]))  # no codebook, no auxiliary loss


def test_lfq_codes_are_the_binary_numbers_of_the_channels_signs(digits):
    model = LFQAutoencoder((32, 32, 1), code_dim=5, encoder_hidden=8, decoder_hidden=8)
    assert model.code_layout().num_codes == (32,) and model.bits() == 16 * 16 * 5
    x = digits[:4]
    positive = model.encoder(x).numpy() > 0
    np.testing.assert_array_equal(model.encode(x).numpy(), (positive * 2 ** np.arange(5)).sum(-1))
    # Decoding a code paints its signs: the decoder of the {-1, +1} vector.
    codes = model.encode(x)
    signs = tf.where(tf.constant(positive), 1.0, -1.0)
    np.testing.assert_allclose(model.decode(codes).numpy(), model.decoder(signs).numpy(), atol=1e-6)


def test_the_quantizers_arguments_are_checked():
    with pytest.raises(ValueError, match="levels"):
        FSQAutoencoder((32, 32, 1), levels=(8, 1))
    with pytest.raises(ValueError, match=r"code_dim must be an integer in \[1, 30\]"):
        LFQAutoencoder((32, 32, 1), code_dim=31)
