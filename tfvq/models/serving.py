"""What a model serves: named SavedModel signatures (`Endpoint`), and the code signatures of a discrete model.

A model lists its signatures (`ImageModel.serving_endpoints`): each an
`Endpoint` with its function, input specs and a TF Serving warmup request;
`tfvq.export.saved_model` writes whatever is listed. Images enter a
signature as uint8 pixels (`images_spec`, `served_images`). A `CodeModel`'s
signatures are built here from its code layout alone (`code_endpoints`):
`encode`, `decode`, `decode_seeded` and `reconstruct` per exported layer.
"""

import dataclasses
from typing import Any, Callable, Dict, Sequence

import numpy as np
import tensorflow as tf

from tfvq.models.pixels import to_uint8


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """A SavedModel signature: `fn(*inputs) -> dict of tensors`, traced with `input_signature`.

    `warmup(image)` gives batch-1 NumPy inputs for a TF Serving warmup
    request, `image` a uint8 [1, H, W, C] example. `aliases` are further
    signature names of the same function (e.g. "serving_default").
    """

    name: str
    fn: Callable[..., Dict[str, Any]]
    input_signature: Sequence[tf.TensorSpec]
    warmup: Callable[[np.ndarray], Dict[str, np.ndarray]]
    aliases: Sequence[str] = ()

    def __call__(self, **inputs):
        """Runs `fn` eagerly on inputs named as the signature's (positional in `input_signature` order)."""
        return self.fn(*[inputs[spec.name] for spec in self.input_signature])


def images_spec(image_shape):
    """The input spec of a signature's images: uint8 [None, H, W, C] named "images"."""
    return tf.TensorSpec((None,) + tuple(image_shape), tf.uint8, name="images")


def served_images(images, image_shape):
    """uint8 pixels of a signature -> float [0, 1] (EnsureShape: a run-time check naming both shapes)."""
    return tf.cast(tf.ensure_shape(images, (None,) + tuple(image_shape), name="images_shape_check"), tf.float32) / 255.0


def code_endpoints(model, layers=None, default_layer=None, serving_default=True):
    """The code signatures of every exported layer of a `CodeModel` (`CodeModel.code_endpoints`).

    For each exported layer L (suffix `_layer_L`; the unsuffixed names
    are the default layer's):

      encode        {images: uint8 [B,H,W,C]} -> codes of the layers sent
      decode        codes -> {images: uint8}, `decode(codes, L)` (deterministic)
      decode_seeded codes, {seed: int32 [B]} -> {images}: row i is
                    `decode(codes[i:i+1], L, stochastic=True, seed=(seed[i], 0))`
                    (only if `decodes_stochastically(L)`)
      reconstruct   {images} -> codes and {images}: `reconstruct(x, L)`

    The codes are `codes` (one layer sent) or `codes_layer_l` (several). `layers` defaults to
    `model.default_export_layers()`, `default_layer` to the last of them; `serving_default` names the default
    layer's `reconstruct` "serving_default" too.
    """
    layout = model.code_layout()
    layers = model.default_export_layers() if layers is None else sorted({layout.check_layer(l) for l in layers})
    if not layers:
        raise ValueError("layers must name at least one layer.")
    default_layer = layers[-1] if default_layer is None else layout.check_layer(default_layer)
    if default_layer not in layers:
        layers = sorted(layers + [default_layer])
    suffixed = len(layers) > 1 or layers != [layout.default_layer]
    endpoints = []
    for layer in layers:
        names = lambda m, l=layer: ([f"{m}_layer_{l}"] if suffixed else []) + (  # noqa: E731
            [m] if l == default_layer else [])
        for method, (fn, spec, warmup) in layer_endpoints(model, layer).items():
            first, *aliases = names(method)
            if method == "reconstruct" and layer == default_layer and serving_default:
                aliases.append("serving_default")
            endpoints.append(Endpoint(first, fn, spec, warmup, tuple(aliases)))
    return endpoints


def layer_endpoints(model, layer):
    """{method: (fn, input specs, warmup)} of one layer: `encode`, `decode`, `decode_seeded` (if the layer decodes
    stochastically) and `reconstruct`, each a function of the signature's tensors (see `code_endpoints`)."""
    layout = model.code_layout()
    sent = layout.layers_sent(layer)
    names = ["codes"] if len(sent) == 1 else [f"codes_layer_{l}" for l in sent]
    code_specs = [tf.TensorSpec((None,) + tuple(layout.grids[l - 1]), tf.int32, name=n)
                  for l, n in zip(sent, names)]
    image_spec = images_spec(model.image_shape)
    seed_spec = tf.TensorSpec((None,), tf.int32, name="seed")

    def checked_codes(codes):
        out = []
        for l, c in zip(sent, codes):
            k = layout.num_codes[l - 1]
            c = tf.ensure_shape(c, (None,) + tuple(layout.grids[l - 1]), name="codes_shape_check")
            message = f"layer {l} codes must be in [0, {k - 1}]"
            with tf.control_dependencies([tf.debugging.assert_non_negative(c, message=message),
                                          tf.debugging.assert_less(c, tf.constant(k, tf.int32), message=message)]):
                out.append(tf.identity(c))
        return out

    def as_dict(codes):
        return dict(zip(names, tf.nest.flatten(codes)))

    def encode(images):
        return as_dict(model.encode(served_images(images, model.image_shape), layer))

    def decode(*codes):
        return {"images": to_uint8(model.decode(checked_codes(codes), layer))}

    def decode_seeded(*args):
        codes, seed = checked_codes(args[:-1]), args[-1]
        check = tf.debugging.assert_equal(tf.size(seed), tf.shape(codes[0])[0],
                                          message="seed must be int32 of shape [batch]: one seed per row of codes")
        with tf.control_dependencies([check]):
            seed = tf.identity(tf.reshape(seed, [-1]))

        def one(row):
            *c, s = row
            x = model.decode([ci[None] for ci in c], layer, stochastic=True, seed=tf.stack([s, 0]))
            return to_uint8(x)[0]

        images = tf.map_fn(one, (*codes, seed), fn_output_signature=tf.TensorSpec(model.image_shape, tf.uint8))
        return {"images": images}

    def reconstruct(images):
        x = served_images(images, model.image_shape)
        codes = model.encode(x, layer)
        return {**as_dict(codes), "images": to_uint8(model.decode(codes, layer))}

    def warm_codes(image):
        return {n: np.zeros((1,) + tuple(s.shape[1:]), np.int32) for n, s in zip(names, code_specs)}

    endpoints = {
        "encode": (encode, [image_spec], lambda image: {"images": image}),
        "decode": (decode, code_specs, warm_codes),
    }
    if model.decodes_stochastically(layer):
        endpoints["decode_seeded"] = (
            decode_seeded, code_specs + [seed_spec],
            lambda image: {**warm_codes(image), "seed": np.zeros((1,), np.int32)})
    endpoints["reconstruct"] = (reconstruct, [image_spec], lambda image: {"images": image})
    return endpoints
