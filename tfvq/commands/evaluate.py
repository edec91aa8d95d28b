"""`tfvq evaluate --model=NAME|FOLDER`: distortion, codes, bits and classifier accuracy per layer on a test split.

    tfvq evaluate --model=hqa_digits
    tfvq evaluate --model=runs/mine --limit=200 --out=eval_mine      # also evaluation.json and evaluation.png
    tfvq evaluate --model=hqa_mnist --dataset=tfds:mnist --data_dir=~/tensorflow_datasets

The model is a zoo name or a model folder (a `tfvq train` run folder, a `tfvq.zoo.save` folder); the data is
--dataset, else the dataset the folder (or the --weights folder) was trained on, else the zoo entry's, and the
output says which. Per layer: the fixed-rate bits and the coded bits of one entropy-coded file, MSE, PSNR,
SSIM (and MS-SSIM for large images), the codes used and their perplexity, and for labelled data the accuracy
of a classifier fitted on the training originals; then the model's own report (`tfvq.evaluate`).
"""

import os


def arguments(parser):
    parser.add_argument("--model", required=True, help="zoo name, or a model folder (a `tfvq train` run folder, a "
                        "tfvq.zoo.save folder)")
    parser.add_argument("--weights", default=None,
                        help="weights (default: bundled for a zoo name, the folder's own for a folder)")
    parser.add_argument("--dataset", default=None, help="data source (default: the folder's dataset, else the zoo "
                        "entry's); anything `tfvq train --dataset` takes")
    parser.add_argument("--data_dir", default=None, help="tfds data directory")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N test images")
    parser.add_argument("--out", default=None, help="write evaluation.json and evaluation.png here")


def run(args):
    from tfvq import evaluate

    result = evaluate.run(args.model, args.weights, args.dataset, args.limit, args.data_dir, args.out)
    print(f"{result['model']} on {result['dataset']} ({result['dataset_source']}; test split, {result['images']} "
          "images):")
    print(evaluate.format_table(result))
    if args.out:
        print(f"wrote {os.path.join(args.out, 'evaluation.json')} and {result['png']}")
    return 0
