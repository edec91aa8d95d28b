"""Fixed rates of `.tfvq` files: bits and bytes per image at each layer of a zoo model."""

import math

from tfvq.codec import container
from tfvq.codec.files import code_layout, model_spec
from tfvq.codec.header import layers_text


def _grid(grids):
    return " + ".join(f"{h}x{w}" for h, w in grids)


def rate_table(model_name):
    """The rates of a zoo model's files, one image per file, one row per layer it encodes at.

    Returns:
      a list of dicts, one per layer l = 1..L of `code_layout()`:
        layer: l, the layer `compress(..., layer=l)` encodes at;
        layers: the layers the file holds, `code_layout().layers_sent(l)`
          (HQA and VQ-VAE: (l,); RRVQ-VAE: (l, ..., L));
        default: whether l is the model's default layer;
        code_grid, num_codes: tuples of (h, w) and K over those layers;
        layer_bits: each layer's h * w * ceil(log2 K);
        bits: their sum, `code_layout().bits(l)`;
        payload_bytes: ceil(bits / 8);
        file_bytes: a one-image fixed-rate file (`coder="fixed"`): the version 4 header and CRC
          (`tfvq.codec.container`) and the payload: an upper bound (the range-coded stream ends as soon as
          its codes are known, e.g. a byte or two sooner, or at once for codes that are all zero);
        ratio: raw H*W*C*8 bits / bits; file_ratio: raw bytes / file bytes.

    Raises `CodecError` for an unknown model or one without discrete codes.
    """
    layout = code_layout(model_name)
    h, w, c = model_spec(model_name).image_shape
    raw_bits = h * w * c * 8
    rows = []
    for layer in range(1, layout.num_layers + 1):
        sent = layout.layers_sent(layer)
        grids = tuple(tuple(int(d) for d in layout.grids[l - 1]) for l in sent)
        ks = tuple(int(layout.num_codes[l - 1]) for l in sent)
        bits = layout.bits(layer)
        payload = -(-bits // 8)
        header = container.write_header(model_name, bytes(container.TAG_BYTES), layer,
                                        {l: container.UNIFORM for l in sent})
        file_bytes = payload + len(header) + 4
        layer_bits = tuple(gh * gw * max(1, math.ceil(math.log2(k))) for (gh, gw), k in zip(grids, ks))
        rows.append(dict(layer=layer, layers=sent, default=layer == layout.default_layer, code_grid=grids,
                         num_codes=ks, layer_bits=layer_bits, bits=bits, payload_bytes=payload, file_bytes=file_bytes,
                         ratio=raw_bits / bits, file_ratio=raw_bits / 8 / file_bytes))
    return rows


def format_rate_table(model_name, rows=None):
    """`rate_table` as a Markdown table; the default layer is marked "(default)"."""
    rows = rate_table(model_name) if rows is None else rows
    lines = [
        f"{model_name}:",
        "| layers | code grid | K | bits | payload bytes | file bytes | ratio (bits) | ratio (file) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        layers = layers_text(r["layers"]) + (" (default)" if r["default"] else "")
        ks = ", ".join(str(k) for k in r["num_codes"])
        lines.append(
            f"| {layers} | {_grid(r['code_grid'])} | {ks} | {r['bits']} | "
            f"{r['payload_bytes']} | {r['file_bytes']} | {r['ratio']:.1f}:1 | {r['file_ratio']:.1f}:1 |"
        )
    return "\n".join(lines)
