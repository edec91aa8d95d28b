"""The hierarchical VAEs' recipe (`tfvq.models.rrvq.rrvq_recipe`): RRVQ App. C's defaults, and `for_epochs` for
another dataset."""

import pytest

from tfvq.models.rrvq import RRVQVAE, HierarchicalVAE, HierarchicalVAERecipe, SpatialVAE


def test_every_hierarchical_vae_trains_under_rrvq_app_cs_recipe():
    assert HierarchicalVAE.recipe_class is RRVQVAE.recipe_class is SpatialVAE.recipe_class is HierarchicalVAERecipe
    rrvq = HierarchicalVAERecipe()
    assert (rrvq.optimizer, rrvq.batch_size, rrvq.learning_rate, rrvq.plateau_factor, rrvq.min_learning_rate) == (
        "adamax", 64, 8e-4, 0.8, 5e-5)
    assert HierarchicalVAERecipe.for_epochs(50000, 500, 20) == rrvq  # 500 epochs of CIFAR-10, patience 20


def test_for_epochs_counts_epochs_at_the_papers_batch_of_64():
    celeba = HierarchicalVAERecipe.for_epochs(162770, 160, 5)
    assert (celeba.steps, celeba.eval_every, celeba.plateau_patience) == ((160 * 2544,), 2544, 5)  # ceil(162770/64)
    small = HierarchicalVAERecipe.for_epochs(1500, 100, 5, batch_size=32, steps=(3000,))
    assert (small.steps, small.eval_every, small.batch_size) == ((3000,), 24, 32)  # the epoch stays at batch 64
    with pytest.raises(ValueError, match="Unknown recipe key 'initial_temperature' for HierarchicalVAERecipe"):
        HierarchicalVAERecipe.for_epochs(1500, 100, 5, initial_temperature=1.0)
    with pytest.raises(ValueError, match="Unknown optimizer 'sgd'"):
        HierarchicalVAERecipe(optimizer="sgd")
