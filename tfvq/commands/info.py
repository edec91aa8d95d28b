"""`tfvq info FILE.tfvq`: a `.tfvq` file's header, any version, read without the model (no TensorFlow).

    tfvq info digit.tfvq

The file's version, model, layers, images and size, its bytes (header, stream, CRC), then the coder of each
layer: what `tfvq.codec.read_header` reads and its `describe()` says.
"""

from tfvq.cli_utils import read_bytes


def arguments(p):
    p.add_argument("file", help="input .tfvq file")


def run(args):
    from tfvq import codec

    first, *rest = codec.read_header(read_bytes(args.file)).describe()
    print("\n".join([f"{args.file}: {first}", *rest]))
    return 0
