"""`--jit_compile` (`tfvq.train.step.make_step(jit_compile=True)`): every family's training step runs under XLA."""

import numpy as np
import pytest

from tfvq.zoo.tiny import one_per_family

FAMILIES = one_per_family()


def loss_and_grads_compiled(step_fn, iterator):
    """Whether the step's loss-and-gradients function is one that carries XLA's must-compile attribute
    (`jit_compile=True`; without it, it is traced into the step's graph. Some of the model's own small functions
    carry the attribute in every step, e.g. the fused Mish)."""
    graph = step_fn.get_concrete_function(iterator).graph.as_graph_def()
    compiled = {f.signature.name for f in graph.library.function
                if "_XlaMustCompile" in f.attr and f.attr["_XlaMustCompile"].b}
    return any("loss_and_grads" in name for name in compiled)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FAMILIES.values()), ids=list(FAMILIES))
def test_every_family_trains_a_step_under_xla(tiny_trainer, name):
    """The tiny model of each family: two XLA-compiled steps (on the CPU, XLA compiles or raises) with finite
    losses, and the stage's weights move. Between 5 and 35 s a family on 2 cores: XLA compiles the whole
    loss and gradient graph.

    The XLA step is not compared number for number with the graph step: XLA's stateless random numbers need
    not be the graph's (`tf.random.stateless_*` auto-selects its algorithm per device and compiler), so the
    sampled Gumbel noise differs; on hqa_digits' tiny model the first step's loss differed by 0.24%."""
    t = tiny_trainer(name, jit_compile=True)
    stage = t.stages[1]
    if stage.setup is not None:
        stage.setup(t._setup_images())
    step, iterator = t.make_step(1), t.make_dataset(1, 0)
    assert loss_and_grads_compiled(step, iterator)
    before = [np.array(v) for v in stage.variables()]
    for _ in range(2):
        terms = step(iterator)
        assert all(np.isfinite(float(v)) for v in terms.values()), terms
    assert any(not np.array_equal(b, np.array(v)) for b, v in zip(before, stage.variables()))

