"""Datasets: tfds-backed (mnist, celeb_a, cifar10, svhn_cropped) and embedded ones
that need no download (digits, toy_modes, swatches).

`load(name, split, batch_size=...)` gives a `tf.data.Dataset` of float32 NHWC
images in [0, 1]; `load_numpy` the same as one array; `load_labels` their
class labels where the data has them; `info(name)` the facts (shape, splits,
sizes, paper reference). See `tfvq.data.datasets`. Your own images (a
folder, a .npz/.npy file, `tfds:NAME`) load the same way: see
`tfvq.data.sources`. `load(..., cache=...)` keeps the decoded images of a tfds
dataset or a folder, in memory or in a file under the data directory
(`write_cache`, `tfvq data cache`): see `tfvq.data.image_cache`.

`tfvq.data.toy_modes` (the HQA §4.1 density) is a submodule of its own and is
imported only when the `toy_modes` dataset is loaded.
"""

from tfvq.data.datasets import (
    DATASETS,
    DatasetInfo,
    DatasetNotPreparedError,
    ImageCacheError,
    cache_file,
    info,
    load,
    load_labels,
    load_numpy,
    write_cache,
)

__all__ = ["DATASETS", "DatasetInfo", "DatasetNotPreparedError", "ImageCacheError", "cache_file", "info", "load",
           "load_labels", "load_numpy", "write_cache"]
