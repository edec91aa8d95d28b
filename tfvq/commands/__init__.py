"""The subcommands of the `tfvq` command (`tfvq.cli`), each a function adding its flags and one running it:
`train`, `export` and the codec's `compress`, `decompress`, `info`, `models`, `fit-priors`.

The command lines are the top layer: they import train, export, codec and the zoo; nothing imports them
but `tfvq.cli`, `train.py` and `export.py`."""
