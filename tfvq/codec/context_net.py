"""The network of a context prior (`tfvq.codec.context`): Keras, so imported only when one is built."""

import keras


@keras.saving.register_keras_serializable(package="tfvq")
class ContextNet(keras.Model):
    """Logits [n, h, w, K] of one layer's codes from its known codes (K: unknown) and the layer above.

    Args:
      num_codes: K of this layer.
      above_codes: K of the layer above, or None (the top layer: spatial context only).
      factor: layer l's grid over layer l+1's (an integer; 1 when there is no layer above).
      width, depth, embed, mix: channels of the 3x3 convolutions, their number, the embedding size, and
        the channels of the 1x1 convolution before the logits.
    """

    def __init__(self, num_codes, above_codes=None, factor=1, width=48, depth=2, embed=16, mix=64, **kwargs):
        super().__init__(**kwargs)
        self.num_codes, self.above_codes, self.factor = int(num_codes), above_codes, int(factor)
        self.width, self.depth, self.embed, self.mix = int(width), int(depth), int(embed), int(mix)
        self.own_embedding = keras.layers.Embedding(self.num_codes + 1, self.embed, name="own")
        self.above_embedding = (None if above_codes is None
                                else keras.layers.Embedding(int(above_codes), self.embed, name="above"))
        self.convs = [keras.layers.Conv2D(self.width, 3, padding="same", activation="relu", name=f"conv{i}")
                      for i in range(self.depth)]
        self.mix_conv = keras.layers.Conv2D(self.mix, 1, activation="relu", name="mix")
        self.logits = keras.layers.Conv2D(self.num_codes, 1, name="logits")

    def call(self, inputs):
        known, above = inputs
        h = self.own_embedding(known)
        if self.above_embedding is not None:
            a = self.above_embedding(above)
            if self.factor > 1:
                a = keras.ops.repeat(keras.ops.repeat(a, self.factor, axis=1), self.factor, axis=2)
            h = keras.ops.concatenate([h, a], axis=-1)
        for conv in self.convs:
            h = conv(h)
        return self.logits(self.mix_conv(h))

    def get_config(self):
        return {**super().get_config(), "num_codes": self.num_codes, "above_codes": self.above_codes,
                "factor": self.factor, "width": self.width, "depth": self.depth, "embed": self.embed,
                "mix": self.mix}
