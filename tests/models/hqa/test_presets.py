"""HQA's presets (`tfvq.models.hqa.presets`): every entry builds and describes itself, the small ones train
every layer, the rates of HQA Tables 10 and 14, and the recipes of the entries and of their bundled weights."""

import numpy as np
import pytest
import tensorflow as tf

from tfvq import zoo
from tfvq.models.hqa import HQARecipe, VQVAERecipe

SMALL = {"hqa_mnist", "hqa_digits", "vqvae_mnist"}


@pytest.mark.parametrize("name", zoo.list_models("hqa*") + zoo.list_models("vqvae*"))
def test_every_greedy_entry_builds_and_describes_itself(name):
    info = zoo.info(name)
    assert info["paper"] and info["table"] and info["parameters"] > 0
    assert set(info["bits_per_layer"]) == set(range(1, len(info["bits_per_layer"]) + 1))
    if name in SMALL:
        model = zoo.build(name)
        x = np.random.default_rng(0).uniform(size=(2,) + model.image_shape).astype(np.float32)
        assert model(x).shape == x.shape
        for layer in range(1, model.num_layers + 1):
            with tf.GradientTape() as tape:
                loss = model.layer_loss(x, layer, seed=tf.constant([0, layer]))["loss"]
            grads = tape.gradient(loss, model.layer_variables(layer))
            assert np.isfinite(float(loss)) and all(g is not None for g in grads)


def test_vqvae_mnist_reaches_hqa_layer_5s_rate():
    model = zoo.build("vqvae_mnist")
    assert model.code_shape() == (1, 1) and model.bits() == 8
    assert zoo.build("hqa_mnist").bits(5) == model.bits()


def test_the_pinned_recipes_of_the_entries_stay():
    assert zoo.recipe("hqa_mnist") == HQARecipe(steps=(18000,) * 5) and zoo.recipe("vqvae_mnist") == VQVAERecipe()
    digits = zoo.recipe("hqa_digits")
    assert digits.batch_size == 64 and digits.steps == (1200, 400, 800, 800, 2400) and digits.learning_rate == 2e-3
    assert digits.codebook_init == ("kmeans++", "random", "random", "random", "random")
    assert digits.keep_codes == (20, None, None, None, None) and digits.initial_temperature == 0.66
    celeba = zoo.recipe("hqa_celeba64")
    assert celeba.batch_size == 1024 and celeba.initial_temperature == 0.4 and celeba.steps[-1] == 30000


def test_the_recipe_of_bundled_weights_is_typed_and_pinned_beside_the_papers():
    hqa, vqvae = zoo.get("hqa_mnist"), zoo.get("vqvae_mnist")
    assert hqa.train == HQARecipe(steps=(18000,) * 5)  # the paper's recipe stays the entry's own
    assert isinstance(hqa.weights_recipe, HQARecipe) and isinstance(vqvae.weights_recipe, VQVAERecipe)
    assert hqa.weights_recipe.steps == (4000, 2000, 2000, 3000, 12000) and hqa.weights_recipe.batch_size == 128
    assert sum(hqa.weights_recipe.steps) == sum(vqvae.weights_recipe.steps)  # the baseline gets as many updates
    assert hqa.weights_dataset == vqvae.weights_dataset == "mnist10k"
    assert zoo.info("vqvae_mnist")["weights_recipe"] == vqvae.weights_recipe.to_dict()
    fields = dict(vqvae.__dict__, name="test_recipes_bad_weights_key", weights_recipe={"stepz": (3,)})
    with pytest.raises(ValueError, match="Unknown recipe key 'stepz' for VQVAERecipe"):
        zoo.register(zoo.ZooEntry(**fields))
    assert "test_recipes_bad_weights_key" not in zoo.list_models()
