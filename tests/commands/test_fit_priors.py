"""Tests of tfvq.commands.fit_priors: `tfvq fit-priors`, the priors of a model's weights, saved beside them."""

import json
import re
import shutil

import numpy as np
import pytest

from tfvq import cli, data, zoo
from tfvq.commands.fit_priors import rate_weights


def test_rate_weights_argument_parses_layer_weight_pairs():
    assert rate_weights("5:2,4:0.5") == {5: 2.0, 4: 0.5}
    assert rate_weights(None) is None
    with pytest.raises(ValueError, match="LAYER:WEIGHT pairs"):
        rate_weights("5=2")


def test_fit_priors_counts_the_codes_of_the_images_into_the_static_prior_beside_the_weights(tmp_path, six_digits,
                                                                                               capsys, one_line_error):
    weights = tmp_path / "mine.weights.h5"
    shutil.copy(zoo.bundled_weights_path("hqa_digits"), weights)
    np.save(tmp_path / "images.npy", six_digits)
    assert cli.main(["fit-priors", "--model=hqa_digits", f"--weights={weights}", f"--images={tmp_path / 'images.npy'}",
                     "--context_steps=0"]) == 0
    path = tmp_path / "mine.prior.json"
    out = capsys.readouterr().out
    assert re.fullmatch(rf"static priors \((\d+) given images\) -> {re.escape(str(path))}\n", out), out
    assert not (tmp_path / "mine.context.npz").exists()  # --context_steps=0: static priors only
    images = data.load_numpy(str(tmp_path / "images.npy"), "train", image_shape=(32, 32, 1))
    assert out.startswith(f"static priors ({len(images)} given images)")
    model = zoo.load("hqa_digits", weights=str(weights))
    prior = json.loads(path.read_text())
    assert (prior["model"], prior["weights_hash"]) == ("hqa_digits", zoo.weights_hash(model).hex())
    for layer, counts in enumerate(prior["counts"], 1):
        codes = model.encode(images, layer).numpy()
        np.testing.assert_array_equal(counts, np.bincount(codes.ravel(), minlength=256))
    assert cli.main(["fit-priors", "--model=hqa_digits", f"--weights={weights}", "--rate_weights=5=2"]) == 1
    assert "--rate_weights takes LAYER:WEIGHT pairs" in one_line_error(1, capsys.readouterr().err)
