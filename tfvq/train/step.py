"""One distributed training step of a stage, under any `tf.distribute` strategy.

Each step runs `strategy.run` over the global batch: the stage's per-step
hooks, its loss and gradients on each replica; gradients are all-reduced
(mean over the global batch), clipped by their global norm (not per replica)
and applied.

Mixed precision (`tfvq.layers.precision`): the variables are float32, so the
gradients are float32 whatever the layers compute in. With a
`keras.optimizers.LossScaleOptimizer` (mixed_float16) the loss is multiplied
by the dynamic loss scale S before the gradients are taken, so that small
float16 gradients do not flush to zero; the scaled gradients are all-reduced,
divided by S, clipped, and handed to the optimiser, which skips the update
(and halves S) on every replica alike when any gradient is not finite: the
all-reduced gradients are the same on every replica, so is the decision.
"""

import keras
import tensorflow as tf


def make_step(strategy, stage, optimizer, step_variable, base_seed, jit_compile=False):
    """A `tf.function` running one global step of `stage`; returns the replica-mean of its scalars.

    Args:
      strategy: the `tf.distribute` strategy the variables live in.
      stage: a `tfvq.models.Stage`.
      optimizer: the stage's Keras optimiser (built in `strategy.scope()`),
        possibly a `keras.optimizers.LossScaleOptimizer`.
      step_variable: an int64 variable, the step within the stage; the step
        function increments it.
      base_seed: int32 [2]; step s samples with `stateless_fold_in(base_seed, s)`
        (each replica then draws its own slice of the global batch's noise).
      jit_compile: compile each replica's loss and gradients with XLA (the
        hooks, the all-reduce and the optimiser stay outside it).
    """
    variables = stage.variables()
    replicas = strategy.num_replicas_in_sync
    clip = float(stage.optimizer.clip_norm)
    base_seed = tf.constant(base_seed, tf.int32)
    scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

    def loss_and_grads(images, step):
        seed = tf.random.experimental.stateless_fold_in(base_seed, step)
        with tf.GradientTape() as tape:
            terms = dict(stage.loss(images, seed))
            loss = tf.cast(terms["loss"], tf.float32)
            if scaled:
                loss = optimizer.scale_loss(loss)
        grads = tape.gradient(loss, variables)
        grads = [tf.convert_to_tensor(g) if g is not None else tf.zeros_like(v) for g, v in zip(grads, variables)]
        return terms, grads

    if jit_compile:
        loss_and_grads = tf.function(loss_and_grads, jit_compile=True)

    def replica_step(images, step):
        shown = dict(stage.before_step(step))
        terms, grads = loss_and_grads(images, step)
        ctx = tf.distribute.get_replica_context()
        grads = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, grads)
        if scaled:
            # Clip the true gradients: unscale first. The LossScaleOptimizer divides what it is given by
            # the same scale (a power of two, so multiplying back is exact) and skips a non-finite step
            # (an infinite gradient makes the clipped ones NaN).
            scale = tf.cast(tf.convert_to_tensor(optimizer.dynamic_scale), tf.float32)
            grads = [g / scale for g in grads]
        grads, norm = tf.clip_by_global_norm(grads, clip)
        if scaled:
            grads = [g * scale for g in grads]
            terms["loss_scale"] = scale
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
