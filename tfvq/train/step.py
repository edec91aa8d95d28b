"""One distributed training step of a stage, under any `tf.distribute` strategy.

Each step runs `strategy.run` over the global batch: the stage's per-step
hooks, its loss and gradients on each replica; gradients are all-reduced
(mean over the global batch), clipped by their global norm (not per replica)
and applied.
"""

import tensorflow as tf


def make_step(strategy, stage, optimizer, step_variable, base_seed):
    """A `tf.function` running one global step of `stage`; returns the replica-mean of its scalars.

    Args:
      strategy: the `tf.distribute` strategy the variables live in.
      stage: a `tfvq.models.Stage`.
      optimizer: the stage's Keras optimiser (built in `strategy.scope()`).
      step_variable: an int64 variable, the step within the stage; the step
        function increments it.
      base_seed: int32 [2]; step s samples with `stateless_fold_in(base_seed, s)`
        (each replica then draws its own slice of the global batch's noise).
    """
    variables = stage.variables()
    replicas = strategy.num_replicas_in_sync
    clip = float(stage.optimizer.clip_norm)
    base_seed = tf.constant(base_seed, tf.int32)

    def replica_step(images, step):
        shown = dict(stage.before_step(step))
        seed = tf.random.experimental.stateless_fold_in(base_seed, step)
        with tf.GradientTape() as tape:
            terms = dict(stage.loss(images, seed))
        grads = tape.gradient(terms["loss"], variables)
        grads = [tf.convert_to_tensor(g) if g is not None else tf.zeros_like(v) for g, v in zip(grads, variables)]
        ctx = tf.distribute.get_replica_context()
        grads = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, grads)
        grads, norm = tf.clip_by_global_norm(grads, clip)
        # Keras sums gradients over replicas when it applies them: hand it 1/R of the mean.
        optimizer.apply_gradients(zip([g / replicas for g in grads], variables))
        terms["grad_norm"] = norm
        terms.update(shown)
        return terms

    @tf.function
    def step_fn(iterator):
        images = next(iterator)
        per_replica = strategy.run(replica_step, args=(images, step_variable))
        step_variable.assign_add(1)
        return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in per_replica.items()}

    return step_fn
