"""What a parsed `.tfvq` file answers, whatever its version (no NumPy, no TensorFlow).

`tfvq.codec.read_header` reads a file of any version into a `FileHeader`: version 4's
`tfvq.codec.container.CompactFile`, version 3's `tfvq.codec.legacy.v3.ChunkedFile`, and versions 1, 0x81
and 2's `tfvq.codec.legacy.v1_v2.PackedFile`. Each has the attributes below and says what `tfvq info`
prints of it (`describe`), so nothing that reads files asks for the version again.
"""


def span(layers):
    """'layer 3' or 'layers 1..5'."""
    return f"layer {layers[0]}" if len(layers) == 1 else f"layers {layers[0]}..{layers[-1]}"


def layers_text(layers):
    """'3' or '1..5'."""
    return str(layers[0]) if len(layers) == 1 else f"{layers[0]}..{layers[-1]}"


class FileHeader:
    """A `.tfvq` file as its version's reader parsed it: what decoding it needs and what `tfvq info` prints.

    Every version's has:
      version, version_byte: the format version (1 to 4) and the byte that says it (0x81 for version 1 of every
        layer).
      model: the zoo model the file names.
      first_layer: l, the finest layer stored, the one decoded by default.
      layers: the stored layers, finest first.
      images: N, the number of images.
      image_size: (H, W) of the images, or None when they have the model's own size.
      lossless: whether the file holds the exact pixels.
      resized: whether the images were resized to the model's size before coding (and are resized back).
      file_bytes: the file's length.
    """

    @property
    def num_layers(self):
        return len(self.layers)

    def describe(self):
        """The lines `tfvq info` prints of the file: its fields, then a line per layer where there is more."""
        raise NotImplementedError
