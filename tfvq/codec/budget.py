"""What `coder="auto"` may spend on context networks for a large image: a budget of multiply-adds.

A context prior (`tfvq.codec.context`) runs its network once per position of
a layer's grid, on integers in NumPy (`tfvq.codec.integer_net`), with a
softmax over every code: `hqa_mnist`'s layer 1 costs 54,016 multiply-adds
per position, 13,504 per pixel, where its encoder and the static prior's
range coder cost a small fraction of that. Coding a 12 MP image that way
took 40 s where `static` takes 3 s, for 5% fewer bytes. So for a large
image (one the codec codes in bands, `tfvq.codec.coding.Geometry.big`),
`auto` codes a layer with its context network only within a budget of work,
counted from the networks' configs and the grids, never timed, so the same
image makes the same file on every machine:

    budget = max(FLOOR, PER_PIXEL x the image's pixels) multiply-adds

and the layers are admitted from the top down (coarse layers cost least per
pixel) while their sum stays within it (`context_layers`). The two
constants are what this work costs on the reference machine of
`benchmarks/large_images.py` (2 cores, about 0.09 ns per multiply-add of
the integer networks on two threads): FLOOR about 0.2 s, PER_PIXEL about
0.19 s per megapixel, which is what `static` spends per megapixel there. So
`auto` takes at most about twice `static`'s time on large images
(docs/speed.md has the measured ratios).

Small images, alone or in batches, have no budget: there a context prior
pays for its time (it halves `hqa_digits`' layer-1 files), and `auto` writes
`smallest`'s file. `coder="smallest"` has no budget at any size.
"""

FLOOR = 1 << 31
"""Multiply-adds of context networks `auto` may spend on any images (about 0.2 s)."""
PER_PIXEL = 2048
"""... or this many per pixel of the images, if that is more."""


def budget(pixels):
    """The multiply-adds `auto` may spend on context networks for images of `pixels` pixels in all."""
    return max(FLOOR, PER_PIXEL * int(pixels))


def context_layers(context, grids, count, pixels):
    """The layers `auto` may code with their context networks: frozenset of layers.

    Args:
      context: the `ContextPriors` (None: no layer).
      grids: the code grids (h, w) of the layers, finest first (a `CodeLayout`'s `grids` at the coded size).
      count: grids per layer (images, or tiles of all images).
      pixels: the images' pixels in all (`budget`).

    From the top layer down, each layer with a network whose work (`ContextPriors.multiply_adds` per position
    times its positions) keeps the sum within `budget(pixels)`; the first that does not, and every layer below
    it, are left out.
    """
    if context is None:
        return frozenset()
    left, out = budget(pixels), set()
    for layer in range(len(grids), 0, -1):
        if not context.has(layer):
            continue
        h, w = grids[layer - 1]
        work = context.multiply_adds(layer) * h * w * int(count)
        if work > left:
            break
        left -= work
        out.add(layer)
    return frozenset(out)
