"""`tfvq fit-priors --model=NAME|FOLDER`: the static and context priors of a model's weights, saved beside them.

    tfvq fit-priors --model=runs/mine                    # priors for your own weights, into the folder
    tfvq fit-priors --model=hqa_digits --weights=mine.weights.h5 --images=train.npy --context_steps=3000

The static prior counts every layer's codes over the training images (`tfvq.codec.fit_prior`); the context
priors fit a small network per layer on them (`tfvq.codec.fit_context`, for models whose layers decode
alone: HQA, VQ-VAE). With `--rate_weights` the static prior is counted over codes chosen by rate, as the
encoder will then choose them (`tfvq.codec.prior`). Both are written where the zoo keeps the priors of those weights
(`tfvq.zoo.prior_paths`), so the files compressed with the weights use them.
"""


def arguments(p):
    p.add_argument("--model", required=True, help="zoo model name, or a model folder (its priors are written "
                   "into it)")
    p.add_argument("--weights", help="weights to fit for instead of the bundled ones (any path tfvq.zoo.load "
                   "accepts); the priors are written beside them")
    p.add_argument("--images", help="training images instead of the model's dataset (a folder's: the one it was "
                   "trained on): anything `tfvq train --dataset` takes (a directory of images, .npz/.npy, "
                   "tfds:NAME)")
    p.add_argument("--context_steps", type=int, default=3000,
                   help="Adam steps per layer of the context priors (0: static priors only)")
    p.add_argument("--rate_weights", default=None, metavar="LAYER:WEIGHT[,LAYER:WEIGHT]",
                   help="choose these layers' codes by rate (argmax log q + WEIGHT log p under the static "
                   "prior, for models with a q such as RRVQ-VAE), e.g. 5:2 for rrvq_mnist's top layer")


def rate_weights(text):
    """{layer: weight} of `--rate_weights` ("5:2,4:0.5"); None for None."""
    if text is None:
        return None
    out = {}
    for part in text.split(","):
        try:
            layer, weight = part.split(":")
            out[int(layer)] = float(weight)
        except ValueError:
            raise ValueError(f"--rate_weights takes LAYER:WEIGHT pairs separated by commas (e.g. 5:2), got "
                             f"{text!r}.") from None
    return out


def run(args):
    from tfvq import zoo
    from tfvq.codec import context, files, fit

    model, _ = files.load_model(args.model, args.weights)
    paths = zoo.prior_paths(model)
    if paths is None:
        raise ValueError(f"{args.model!r} has no weights file to fit priors for: pass --weights=PATH or a model "
                         "folder.")
    images = None
    if args.images:
        from tfvq import data

        images = data.load_numpy(args.images, "train", image_shape=tuple(model.image_shape))
    static = fit.fit_prior(args.model, args.weights, images, rate_weights=rate_weights(args.rate_weights))
    static.save(paths["static"])
    print(f"static priors ({static.source}) -> {paths['static']}")
    if args.context_steps <= 0 or model.code_layout().cumulative or not context.layer_factors(model.code_layout()):
        return
    priors = fit.fit_context(args.model, args.weights, images, steps=args.context_steps)
    priors.save(paths["context"])
    print(f"context priors ({priors.source}) -> {paths['context']}")
    return 0
