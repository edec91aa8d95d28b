"""The VQ-VAE quantizer `VectorQuantizer` and the rotation trick.

`VectorQuantizer` is HQA eq. 1-2 (van den Oord et al. 2017): the nearest code
of a `[K, D]` codebook (found by one fused matrix product,
`ops.distance_scores`), a straight-through gradient, and the codebook and
commitment losses -- or an EMA codebook (VQ-VAE App. A.1) with its statistics
all-reduced across replicas. Its codebook, input check, lookup and dead-code
reset (HQA App. C.4, or expiry) come from `tfvq.layers.codebook`.

Options of later work: the rotation trick (`rotation_trick`, Fifty et al.
2024, §4) in place of the straight-through gradient, a cosine distance
(ViT-VQGAN, Yu et al. 2022, §3.2), and dead-code expiry
(`expire_codes_below`, SoundStream §3.3). `ResidualVectorQuantizer`
(`tfvq.layers.rvq`) stacks `VectorQuantizer`s through `quantize_with_rows`.

Mixed precision: as in `tfvq.layers.codebook` -- the search runs in the
compute dtype, the variables (codebook, EMA statistics) and the losses are
float32.
"""

import keras
import tensorflow as tf

from tfvq.layers import ops
from tfvq.layers.codebook import CodebookQuantizer
from tfvq.layers.precision import to_float32


DISTANCES = ("euclidean", "cosine")
"""The `distance=` values of `VectorQuantizer`."""

_ROTATION_MIN_NORM = 1e-6
"""Inputs or codes shorter than this get the straight-through gradient under the rotation trick."""


def _l2_normalize(x):
    """`x / ||x||` along the last axis, formed in float32 (or float64) and returned in `x`'s dtype."""
    wide = to_float32(x)
    return tf.cast(tf.math.l2_normalize(wide, axis=-1, epsilon=1e-12), x.dtype)


def rotation_trick(e, q):
    """The rotation trick of Fifty et al. 2024 (§4): `sg[(||q||/||e||) R] e`, row by row.

    `R` rotates `e^ = e/||e||` onto `q^ = q/||q||`. It is applied without
    forming it, by its Householder form `R = I - 2 r r^T + 2 q^ e^T` with
    `r = (e^ + q^)/||e^ + q^||`, so `R e = e - 2 r (r.e) + 2 q^ (e^.e)`.
    Everything but `e` is held constant (`sg`), so the value is `q` (up to
    rounding) and the gradient with respect to `e` is `(||q||/||e||) R^T` times
    the incoming one. Rows where `e^ = -q^` take `r = 0` (`R = I + 2 q^ e^T`
    still maps `e^` to `q^`); rows where `||e||` or `||q||` is below 1e-6 return
    `e` itself (the straight-through gradient).

    Args:
      e: `[N, D]` inputs (the gradient flows to them).
      q: `[N, D]` their code vectors (held constant).

    Returns:
      `[N, D]` in `e`'s dtype (computed in float32 for 16-bit inputs).
    """
    e_wide = to_float32(e)
    q_wide = tf.stop_gradient(tf.cast(q, e_wide.dtype))
    tiny = tf.constant(_ROTATION_MIN_NORM, e_wide.dtype)
    e_norm = tf.stop_gradient(tf.norm(e_wide, axis=-1, keepdims=True))
    q_norm = tf.norm(q_wide, axis=-1, keepdims=True)
    e_hat = tf.stop_gradient(e_wide / tf.maximum(e_norm, tiny))
    q_hat = q_wide / tf.maximum(q_norm, tiny)
    w = e_hat + q_hat
    w_norm = tf.norm(w, axis=-1, keepdims=True)
    r = tf.where(w_norm > tiny, w / tf.maximum(w_norm, tiny), tf.zeros_like(w))
    scale = q_norm / tf.maximum(e_norm, tiny)
    dot = lambda a, b: tf.reduce_sum(a * b, axis=-1, keepdims=True)  # noqa: E731
    rotated = scale * (e_wide - 2.0 * r * dot(r, e_wide) + 2.0 * q_hat * dot(e_hat, e_wide))
    valid = tf.logical_and(e_norm > tiny, q_norm > tiny)
    return tf.cast(tf.where(valid, rotated, e_wide), e.dtype)


@keras.saving.register_keras_serializable(package="tfvq")
class VectorQuantizer(CodebookQuantizer):
    """VQ-VAE quantizer: nearest code with a straight-through gradient.

    Implements HQA eq. 1 (the one-hot posterior on the nearest code) and eq. 2
    (the VQ-VAE loss of van den Oord et al. 2017). With `ema=False` the loss is
    `||sg[z_e] - e_k||^2 + beta ||z_e - sg[e_k]||^2` (codebook + commitment;
    `commitment_cost` is beta). With `ema=True` the codebook is not trained by
    gradients but follows exponential moving averages of the cluster sizes and
    the sums of the inputs assigned to each code, zero-debiased as in Sonnet's
    `VectorQuantizerEMA`, and the loss is the commitment term alone. Under a
    `tf.distribute` strategy the per-batch statistics are summed over replicas
    before the averages are assigned, so the codebook is the same on every
    replica and equals the single-device result on the concatenated batch.

    Shapes: `[16, 32, 32, 64]` inputs are flattened to `[16384, 64]`, compared
    with the `[K, 64]` codebook, and returned as `[16, 32, 32, 64]` with codes
    `[16, 32, 32]`.

    Options (all off by default, which is the layer described above):

    * `rotation_trick=True` -- Fifty et al. 2024, "Restructuring Vector
      Quantization with the Rotation Trick", §4: the output is
      `q~ = sg[(||q|| / ||e||) R] e`, where `e` is the input, `q` its code
      vector and `R` the rotation that takes `e/||e||` to `q/||q||`. Its value
      is `q` (exactly: the layer returns `sg[q] + (q~ - sg[q~])`), but the
      gradient reaching `e` is `(||q||/||e||) R^T` times the gradient at `q`
      instead of a copy of it, so the angle between the gradient and the
      vector is the same at `e` as at `q` (their App. A.6). `R` is never
      formed: with `e^ = e/||e||`, `q^ = q/||q||` and
      `r = (e^ + q^)/||e^ + q^||` (the Householder form the paper gives for
      an efficient implementation), `R e = e - 2 r (r.e) + 2 q^ (e^.e)`, one
      pass over `[N, D]`. For
      opposite `e^` and `q^`, `r` is taken as 0 (then `R = I + 2 q^ e^T`
      still takes `e^` to `q^`); an input or code shorter than 1e-6 falls
      back to the straight-through gradient. The codebook still learns from
      the codebook loss (or EMA): `q` enters `q~` only inside `sg`.
    * `distance="cosine"` -- inputs and codes are l2-normalised before the
      nearest-code search (ViT-VQGAN's l2-normalised codes, Yu et al. 2022,
      §3.2), and `quantized`, `lookup`, the losses and `distances` use the
      normalised vectors: the layer's output lies on the unit sphere. The
      gradients flow through the input's normalisation; with `ema=True` the
      EMA averages the normalised inputs and is normalised when used.
    * `expire_codes_below=t` -- dead-code expiry (see `CodebookQuantizer`): a
      code used fewer than `t` times per batch, on average over
      `reset_window` batches, takes a random input vector of the batch.

    Args:
      num_codes: K.
      code_dim: D.
      commitment_cost: beta of HQA eq. 2 (VQ-VAE used 0.25).
      ema: learn the codebook by EMA instead of gradients.
      decay: EMA decay (0.99 in VQ-VAE).
      epsilon: Laplace smoothing of the EMA cluster sizes.
      distance: `"euclidean"` (the default) or `"cosine"`.
      rotation_trick: pass gradients by the rotation trick instead of
        straight through.
      **kwargs: see `CodebookQuantizer` (`code_reset`, `expire_codes_below`,
        `reset_window`, `seed`, ...).

    Returns (from `call`): a dict with
      `quantized` `[..., D]` (straight-through, or rotation trick), `codes`
      int32 `[...]`, `loss` scalar, `perplexity` scalar, `distances`
      `[..., K]` (squared, between the normalised vectors for cosine).

    Example:
      >>> vq = VectorQuantizer(num_codes=8, code_dim=4)
      >>> out = vq(tf.zeros([2, 3, 3, 4]))
      >>> out["codes"].shape
      TensorShape([2, 3, 3])

    References:
      van den Oord et al., Neural Discrete Representation Learning, 2017.
      Williams et al., Hierarchical Quantized Autoencoders, 2020, eq. 1-2.
      Fifty et al., Restructuring Vector Quantization with the Rotation Trick,
      2024, §4.
      Yu et al., Vector-quantized Image Modeling with Improved VQGAN, 2022,
      §3.2 (l2-normalised codes).
    """

    def __init__(
        self,
        num_codes,
        code_dim,
        commitment_cost=0.25,
        ema=False,
        decay=0.99,
        epsilon=1e-5,
        distance=None,
        rotation_trick=False,
        lookup_dim=None,
        **kwargs,
    ):
        if lookup_dim is not None and (
            isinstance(lookup_dim, bool) or not float(lookup_dim).is_integer() or int(lookup_dim) < 1
        ):
            raise ValueError(f"lookup_dim must be None or an integer >= 1, got {lookup_dim!r}.")
        super().__init__(num_codes, code_dim, **kwargs)
        self.lookup_dim = None if lookup_dim is None else int(lookup_dim)
        if not 0.0 <= float(decay) < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}.")
        if distance is None:
            distance = "euclidean" if self.lookup_dim is None else "cosine"
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}.")
        if ema and self.orthogonal_weight:
            raise ValueError("orthogonal_weight acts through gradients; an EMA codebook (ema=True) takes none.")
        self.commitment_cost = float(commitment_cost)
        self.ema = bool(ema)
        self.decay = float(decay)
        self.epsilon = float(epsilon)
        self.distance = distance
        self.rotation_trick = bool(rotation_trick)

    def _codebook_initializer(self):
        # Sonnet initialises VQ codebooks with a variance-scaling uniform.
        return keras.initializers.VarianceScaling(distribution="uniform", seed=self.seed)

    def _codebook_trainable(self):
        return not self.ema

    @property
    def codebook_dim(self):
        """The width of the codes: `lookup_dim` for a low-dimensional lookup, else `code_dim`."""
        return self.code_dim if self.lookup_dim is None else self.lookup_dim

    def _build_extra(self):
        if self.lookup_dim is not None:
            # float32 under mixed precision (autocast=False), cast where a product needs the compute dtype.
            kw = dict(trainable=True, aggregation="only_first_replica", autocast=False)
            glorot = keras.initializers.GlorotUniform(seed=self.seed)
            self.project_in = self.add_weight(
                name="project_in", shape=(self.code_dim, self.lookup_dim), initializer=glorot, **kw)
            self.project_out = self.add_weight(
                name="project_out", shape=(self.lookup_dim, self.code_dim), initializer=glorot, **kw)
        if not self.ema:
            return
        # float32 under mixed precision (autocast=False): EMA sums of small updates stall in 16 bits.
        kw = dict(trainable=False, aggregation="only_first_replica", autocast=False)
        # Hidden (biased) averages and the step counter used for zero-debiasing.
        self.ema_cluster_size_hidden = self.add_weight(
            name="ema_cluster_size_hidden", shape=(self.num_codes,), initializer="zeros", **kw
        )
        self.ema_dw_hidden = self.add_weight(
            name="ema_dw_hidden", shape=(self.num_codes, self.codebook_dim), initializer="zeros", **kw
        )
        self.ema_steps = self.add_weight(name="ema_steps", shape=(), initializer="zeros", **kw)

    def _ema_update(self, flat, codes, counts):
        """EMA codebook update (VQ-VAE App. A.1, Sonnet's zero-debiased scheme)."""
        flat = tf.cast(flat, self.ema_dw_hidden.dtype)  # float32 statistics under mixed precision
        cluster_size = ops.all_reduce_sum(tf.cast(counts, flat.dtype))
        dw = ops.all_reduce_sum(tf.math.unsorted_segment_sum(flat, codes, self.num_codes))
        d = self.decay
        steps = self.ema_steps + 1.0
        hidden_cs = self.ema_cluster_size_hidden * d + cluster_size * (1.0 - d)
        hidden_dw = self.ema_dw_hidden * d + dw * (1.0 - d)
        debias = 1.0 - tf.pow(d, steps)
        avg_cs = hidden_cs / debias
        avg_dw = hidden_dw / debias
        n = tf.reduce_sum(avg_cs)
        smoothed = (avg_cs + self.epsilon) / (n + self.num_codes * self.epsilon) * n
        self.ema_cluster_size_hidden.assign(hidden_cs)
        self.ema_dw_hidden.assign(hidden_dw)
        self.ema_steps.assign(steps)
        self.codebook.assign(avg_dw / smoothed[:, None])

    def _codes_replaced(self, dead, codebook):
        """With `ema=True`, a replaced code restarts its EMA statistics at its new
        vector, weighted as the average code, so the next update keeps it there."""
        if not self.ema:
            return
        cs = tf.convert_to_tensor(self.ema_cluster_size_hidden)
        fill = tf.broadcast_to(tf.reduce_mean(cs), tf.shape(cs))
        codebook = tf.cast(codebook, cs.dtype)
        self.ema_cluster_size_hidden.assign(tf.where(dead, fill, cs))
        self.ema_dw_hidden.assign(tf.where(dead[:, None], codebook * fill[:, None], self.ema_dw_hidden))

    def _codebook_fitted(self, fresh):
        """With `ema=True`, a codebook just fitted by k-means restarts the EMA statistics (the next update is
        then a Lloyd step from it)."""
        if not self.ema:
            return
        for variable in (self.ema_cluster_size_hidden, self.ema_dw_hidden, self.ema_steps):
            value = tf.convert_to_tensor(variable)
            variable.assign(tf.where(fresh, tf.zeros_like(value), value))

    def _regularized_codebook(self):
        return self._search_codebook()

    def _codebook_vectors(self):
        """The codes before any normalisation: the codebook variable (`SimVectorQuantizer`: `C W`)."""
        return tf.convert_to_tensor(self.codebook)

    def _search_codebook(self):
        """The codebook the search and lookup use: the codes, l2-normalised for `distance="cosine"`."""
        codebook = self._codebook_vectors()
        return _l2_normalize(codebook) if self.distance == "cosine" else codebook

    def _project_out(self, x):
        """`x @ project_out` (`[..., lookup_dim]` -> `[..., D]`, in `x`'s dtype); `x` without a lookup_dim."""
        if self.lookup_dim is None:
            return x
        return tf.linalg.matmul(x, tf.cast(self.project_out, x.dtype))

    def code_vectors(self, codes):
        """The code vectors `[..., D]` of integer `codes` `[...]` in the codebook's dtype (float32 under mixed
        precision; normalised for cosine; projected out for a lookup_dim): what the residual stacks add up
        (`tfvq.layers.residual`)."""
        return self._project_out(tf.gather(self._search_codebook(), ops.checked_codes(codes)))

    def lookup(self, codes):
        """Returns the code vectors `[..., D]` of integer `codes` `[...]` (normalised for cosine), in the compute
        dtype."""
        return tf.cast(self.code_vectors(codes), self.compute_dtype)

    def _search_inputs(self, flat):
        """The prepared `[N, D]` inputs as the search compares them: projected to `lookup_dim` if set,
        l2-normalised for cosine."""
        if self.lookup_dim is not None:
            flat = tf.linalg.matmul(flat, tf.cast(self.project_in, flat.dtype))
        return _l2_normalize(flat) if self.distance == "cosine" else flat

    def _nearest(self, flat):
        """(codes [N], scores [N, K]) of `[N, D]` search inputs: `||x - e||^2 - ||x||^2` in one fused
        MatMul+BiasAdd (float32 under mixed precision, `ops.distance_scores`)."""
        scores = ops.distance_scores(flat, self._search_codebook())
        return tf.argmin(scores, axis=-1, output_type=tf.int32), scores

    def nearest_codes(self, inputs):
        """int32 codes `[...]` of `inputs` `[..., D]`: the forward pass's nearest codes without its losses,
        statistics or updates, with TFLite builtins only (the models' TFLite encoders)."""
        flat, leading = self.flatten_inputs(inputs)
        return tf.reshape(self._nearest(self._search_inputs(flat))[0], leading)

    def call(self, inputs, training=None):
        out, _ = self.quantize_with_rows(inputs, training)
        return out

    def quantize_with_rows(self, inputs, training=None):
        """The forward pass (`call`), and the code vectors in the codebook's own dtype.

        For layers that add code vectors up (`tfvq.layers.ResidualVectorQuantizer`
        sums its stages' in float32 under a mixed policy, where `quantized` is
        16-bit).

        Args:
          inputs: `[..., D]` floats.
          training: EMA updates and dead-code resets run in training only.

        Returns:
          `(out, rows)`: `out` is `call`'s dict; `rows` `[N, D]` are the chosen
          code vectors of the N flattened inputs, in the codebook's dtype
          (float32 under mixed precision; l2-normalised for cosine), with no
          straight-through term.
        """
        flat, leading = self.flatten_inputs(inputs)
        flat = self._search_inputs(flat)
        if training:
            self.initialize_codebook(flat)
        # The row constant ||x||^2 does not change the argmin and is added only for `distances`.
        codes, scores = self._nearest(flat)
        distances = tf.maximum(scores + tf.reduce_sum(tf.square(to_float32(flat)), axis=-1, keepdims=True), 0.0)
        counts = ops.code_counts(codes, self.num_codes)
        if training and self.ema:
            self._ema_update(tf.stop_gradient(flat), codes, counts)
        codebook_wide = self._search_codebook()  # after the EMA update, before any reset
        if training and self.resets_codes:
            self.update_usage_and_reset(counts, tf.stop_gradient(flat))
        rows = self._project_out(tf.gather(codebook_wide, codes))
        quantized = tf.gather(tf.cast(codebook_wide, flat.dtype), codes)
        # The losses in float32 (squared differences of nearby 16-bit numbers lose their low bits).
        flat32, quantized32 = to_float32(flat), to_float32(quantized)
        e_latent = ops.safe_mean(tf.square(tf.stop_gradient(quantized32) - flat32))
        if self.ema:
            loss = self.commitment_cost * e_latent
        else:
            q_latent = ops.safe_mean(tf.square(quantized32 - tf.stop_gradient(flat32)))
            loss = q_latent + self.commitment_cost * e_latent
        loss = self.with_regularizer(loss)
        if self.rotation_trick:
            rotated = rotation_trick(flat, quantized)
            quantized_st = tf.stop_gradient(quantized) + (rotated - tf.stop_gradient(rotated))
        else:
            quantized_st = flat + tf.stop_gradient(quantized - flat)
        if self.lookup_dim is not None:
            # Value: the projected code vector exactly; gradient: through the projection of the straight-through.
            projected = self._project_out(quantized_st)
            quantized_st = tf.stop_gradient(self._project_out(quantized)) + (projected - tf.stop_gradient(projected))
        out_shape = tf.concat([leading, [self.code_dim]], axis=0)
        out = {
            "quantized": tf.reshape(quantized_st, out_shape),
            "codes": tf.reshape(codes, leading),
            "loss": loss,
            "perplexity": ops.perplexity(counts),
            "distances": tf.reshape(distances, tf.concat([leading, [self.num_codes]], axis=0)),
        }
        return out, rows

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "commitment_cost": self.commitment_cost,
                "ema": self.ema,
                "decay": self.decay,
                "epsilon": self.epsilon,
                "distance": self.distance,
                "rotation_trick": self.rotation_trick,
                "lookup_dim": self.lookup_dim,
            }
        )
        return config
