"""`tfvq models [PATTERN]`: the zoo's models, with the layers a `.tfvq` file of each holds and its bits per image.

    tfvq models              # every model
    tfvq models 'hqa*'       # a shell-style wildcard

Per model: its image shape, whether it has bundled weights, its description, then per layer the layers a file
of that layer holds (`model.encode(x, layer)`), their code grids and codebook sizes, and the fixed-rate bits
and bytes of one image's codes (`tfvq.codec.rate_table`); the model's default layer is marked.
"""


def arguments(p):
    p.add_argument("pattern", nargs="?", default="*", help="shell-style wildcard, e.g. 'hqa*'")


def _runs(items):
    """'16x16 (x8), 8x8 (x8)' for runs of equal items; an item alone when all are equal."""
    runs = []
    for item in items:
        if runs and runs[-1][0] == item:
            runs[-1][1] += 1
        else:
            runs.append([item, 1])
    if len(runs) == 1:
        return runs[0][0]
    return ", ".join(item if n == 1 else f"{item} (x{n})" for item, n in runs)


def _rate_line(row):
    """One row of `tfvq models`: the layer, the layers a file of it holds, their grids and Ks, bits per image."""
    from tfvq.codec.header import layers_text

    layers = row["layers"]
    held = "" if len(layers) == 1 else f"layers {layers_text(layers)}, "
    grids = _runs(f"{gh}x{gw}" for gh, gw in row["code_grid"])
    k = "K=" + _runs(str(k) for k in row["num_codes"]).replace(", ", "/")
    unit = "byte" if row["payload_bytes"] == 1 else "bytes"
    default = " (default)" if row["default"] else ""
    return (f"  layer {row['layer']}{default}: {held}{grids} codes of {k}, {row['bits']} bits "
            f"({row['payload_bytes']} {unit}) per image, {row['ratio']:.1f}:1")


def run(args):
    from tfvq import codec, zoo

    names = zoo.list_models(args.pattern)
    if not names:
        raise ValueError(f"No zoo model matches {args.pattern!r}; `tfvq models` lists them all.")
    for name in names:
        spec = codec.model_spec(name)
        h, w, c = spec.image_shape
        bundled = zoo.bundled_weights_path(name) is not None
        print(f"{name}  ({h}x{w}x{c}, {'bundled weights' if bundled else 'no bundled weights'}): "
              f"{zoo.get(name).description}")
        if spec.layout is None:
            print("  no discrete codes (continuous latents): cannot make .tfvq files")
            continue
        for row in codec.rate_table(name):
            print(_rate_line(row))
    return 0
