"""Train a tfvq model (thin CLI).

Until the HQA trainer lands this runs the quantizer demo: a small autoencoder
on the embedded 8x8 digits with each quantizer layer, reporting test MSE, code
perplexity and bits per image.
"""

from absl import app, flags

import tfvq  # noqa: F401  (first: selects TensorFlow's CPU allocator before TF starts)

flags.DEFINE_integer("steps", 300, "Training steps per quantizer.", lower_bound=1)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from tfvq import demo

    demo.main(steps=FLAGS.steps)


if __name__ == "__main__":
    app.run(main)
