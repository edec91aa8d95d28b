"""What a model tells the trainer (`tfvq.models.training`): a `Stage` runs nothing it was not given."""

import dataclasses

import pytest

from tfvq.models.training import OptimizerRecipe, Stage


def stage(**kw):
    return Stage(name="train", title="one stage", steps=3, variables=list, loss=lambda x, seed: {"loss": x},
                 optimizer=OptimizerRecipe("adam", 1e-3), **kw)


def test_a_stage_without_hooks_shows_its_loss_and_runs_no_hook_setup_or_evaluation():
    s = stage()
    assert s.before_step(0) == {} and s.shown == ("loss",)
    assert s.evaluate is None and s.eval_every is None and s.setup is None and s.at_steps == {}
    assert s.loss(2.0, None) == {"loss": 2.0} and s.variables() == []
    recipe = s.optimizer
    assert (recipe.cosine_fraction, recipe.plateau, recipe.clip_norm) == (None, None, 1.0)


def test_stages_are_frozen_and_do_not_share_their_step_changes():
    a, b = stage(), stage()
    a.at_steps[2] = print
    assert b.at_steps == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.steps = 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.optimizer.learning_rate = 1.0
