"""TF Serving signatures of the hierarchical VAEs: `RRVQVAE` (zoo family
"rrvq_vae") and `SpatialVAE` ("spatial_vae").

`tfvq.export.saved_model.export_saved_model` writes them in the same layout
as HQA exports (`out_dir/<model_name>/<version>/`, warmup requests in
`assets.extra/`, only standard TensorFlow ops, loadable without tfvq).

Signatures (`H, W, C` = `model.image_shape`, `L` = `model.num_latent_layers`,
`h_l, w_l` = `model.latent_shapes[l - 1]`). Images go in as float32 in
[0, 1], as the models take them (values outside [0, 1] fail at run time):

  bits_per_dim          {images: float32 [B,H,W,C]}          -> {bits_per_dim: float32 [B]}
                        -ELBO in bits/dim, non-relaxed latents, seed `DEFAULT_SEED`:
                        `model.bits_per_dim(images, seed=DEFAULT_SEED)`. Also `serving_default`.
  bits_per_dim_seeded   {images: float32 [B,H,W,C],
                         seed: int32 [2]}                    -> as above, `seed=seed`.
  elbo                  {images}                             -> {elbo: [B], log_likelihood: [B], kl: [B, L]}
                        nats, `model.elbo(images, seed=DEFAULT_SEED)`.
  elbo_seeded           {images, seed: int32 [2]}            -> as above, `seed=seed`.
  reconstruct           {images}                             -> {images: float32 [B,H,W,C] in [0, 1]}
                        deterministic: `model.reconstruct(images, stochastic=False)`.
  sample                {num_images: int32 [], seed: int32 [2]}
                                                             -> {images: uint8 [num_images,H,W,C]}
                        `model.sample(num_images, seed=seed)` (ancestral, pixels = the mean).
  encode (RRVQ only)    {images}                             -> {codes_layer_1: int32 [B,h_1,w_1], ...,
                                                                 codes_layer_L: int32 [B,h_L,w_L]}
                        deterministic: `model.encode(images, stochastic=False)`.

`serving_default` is `bits_per_dim`: the model's own `call` and its evaluation
metric, with one input that has a batch dimension (so REST's row format
works). The batch-level `seed` [2] of the `*_seeded` signatures and both
inputs of `sample` have no batch dimension: send those with REST's columnar
format (`{"inputs": {...}}`).
"""

import numpy as np
import tensorflow as tf

DEFAULT_SEED = (0, 0)
"""The stateless seed of the unseeded `bits_per_dim`, `elbo` (and `reconstruct`, `encode`) signatures."""


def is_hierarchical(model):
    from tfvq.models.rrvq_vae import RRVQVAE

    return isinstance(model, RRVQVAE)


def is_discrete(model):
    from tfvq.models.spatial_vae import SpatialVAE

    return is_hierarchical(model) and not isinstance(model, SpatialVAE)


def signature_methods(model):
    """The signature names of a hierarchical model's export (without `serving_default`)."""
    methods = ["bits_per_dim", "bits_per_dim_seeded", "elbo", "elbo_seeded", "reconstruct", "sample"]
    return methods + (["encode"] if is_discrete(model) else [])


def make_endpoints(model):
    """{signature name: (fn, input_signature)} of a `RRVQVAE` or `SpatialVAE`."""
    if not is_hierarchical(model):
        raise TypeError(f"Expected an RRVQVAE or SpatialVAE, got {type(model).__name__}.")
    shape = (None,) + model.image_shape
    image_spec = tf.TensorSpec(shape, tf.float32, name="images")
    seed_spec = tf.TensorSpec((2,), tf.int32, name="seed")
    n_spec = tf.TensorSpec((), tf.int32, name="num_images")

    def checked_images(images):
        # EnsureShape: a run-time shape check naming both shapes; the model asserts values in [0, 1].
        return tf.ensure_shape(images, shape, name="images_shape_check")

    def checked_seed(seed):
        return tf.ensure_shape(seed, (2,), name="seed_shape_check")

    def default_seed():
        return tf.constant(DEFAULT_SEED, tf.int32)

    def bits_per_dim(images, seed):
        return {"bits_per_dim": model.bits_per_dim(checked_images(images), seed=seed)}

    def elbo(images, seed):
        return dict(model.elbo(checked_images(images), seed=seed))

    def reconstruct(images):
        return {"images": model.reconstruct(checked_images(images), seed=default_seed(), stochastic=False)}

    def encode(images):
        codes = model.encode(checked_images(images), seed=default_seed(), stochastic=False)
        return {f"codes_layer_{l + 1}": c for l, c in enumerate(codes)}

    def sample(num_images, seed):
        n = tf.ensure_shape(num_images, (), name="num_images_shape_check")
        check = tf.debugging.assert_positive(n, message="num_images must be a positive number of images")
        with tf.control_dependencies([check]):
            n = tf.identity(n)
        return {"images": model.sample(n, seed=checked_seed(seed))}

    endpoints = {
        "bits_per_dim": (lambda images: bits_per_dim(images, default_seed()), [image_spec]),
        "bits_per_dim_seeded": (lambda images, seed: bits_per_dim(images, checked_seed(seed)),
                                [image_spec, seed_spec]),
        "elbo": (lambda images: elbo(images, default_seed()), [image_spec]),
        "elbo_seeded": (lambda images, seed: elbo(images, checked_seed(seed)), [image_spec, seed_spec]),
        "reconstruct": (reconstruct, [image_spec]),
        "sample": (sample, [n_spec, seed_spec]),
    }
    if is_discrete(model):
        endpoints["encode"] = (encode, [image_spec])
    return endpoints


def add_endpoints(archive, model):
    """Adds every signature and `serving_default` (= `bits_per_dim`) to a Keras `ExportArchive`."""
    for name, (fn, spec) in make_endpoints(model).items():
        function = tf.function(fn, input_signature=spec, autograph=False)
        archive.add_endpoint(name, function)
        if name == "bits_per_dim":
            archive.add_endpoint("serving_default", function)


def warmup_inputs(model, method, images=None):
    """Batch-1 NumPy inputs of one signature (for warmup requests and smoke tests)."""
    if method == "sample":
        return {"num_images": np.array(1, np.int32), "seed": np.zeros((2,), np.int32)}
    if images is None:
        image = np.full((1,) + model.image_shape, 0.5, np.float32)
    else:
        image = np.clip(np.asarray(images[:1], np.float32), 0, 1)
    if method.endswith("_seeded"):
        return {"images": image, "seed": np.zeros((2,), np.int32)}
    return {"images": image}


def warmup_names(model):
    """(signature name, method) of every warmup request."""
    return [(m, m) for m in signature_methods(model)] + [("serving_default", "bits_per_dim")]
