"""Training on your own images, at another size, from trained weights, at another learning rate, with another
model configuration."""

import numpy as np
import pytest
from PIL import Image

from tfvq import zoo
from tfvq.train import loop
from tfvq.zoo import folders


def _folder(root, n=40):
    rng = np.random.default_rng(0)
    for i in range(n):
        split = "test" if i % 5 == 0 else "train"
        (root / split).mkdir(parents=True, exist_ok=True)
        image = rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)  # RGB, another size and aspect
        Image.fromarray(image).save(root / split / f"{i}.png")
    return str(root)


def test_a_folder_of_images_trains_an_hqa_layer_from_bundled_weights_at_another_size(tmp_path):
    options = loop.TrainOptions(model="hqa_digits", dataset=_folder(tmp_path / "images"), layers=[1], steps=2,
                                batch_size=8, eval_examples=4, image_size=16, learning_rate=1e-3,
                                from_weights="bundled", model_dir=str(tmp_path / "run"), verbose=False)
    trainer = loop.Trainer(options)
    assert trainer.model.image_shape == (16, 16, 1)
    assert trainer.stages[1].optimizer.learning_rate == 1e-3
    bundled = zoo.load("hqa_digits", weights="bundled")
    for a, b in zip(trainer.model.hqa_layers[1].weights, bundled.hqa_layers[1].weights):
        np.testing.assert_array_equal(np.array(a), np.array(b))  # fully convolutional: the weights fit any size
    summary = trainer.run()
    assert summary["report"]["metrics"]["layers"]["1"]["code_shape"] == [8, 8]
    # The run folder is a model folder: it loads with no zoo entry for its 16x16 configuration.
    model = zoo.load(str(tmp_path / "run"))
    assert model.image_shape == (16, 16, 1) and model.zoo_name is None  # not the entry's configuration
    meta = folders.read_metadata(str(tmp_path / "run"))
    assert meta["model"] == "hqa_digits" and meta["dataset"].endswith("images") and "layers" in meta["metrics"]
    x = np.random.default_rng(1).integers(0, 256, size=(2, 16, 16, 1), dtype=np.uint8)
    np.testing.assert_array_equal(model.encode(x, 1).numpy(), trainer.model.encode(x, 1).numpy())


def test_config_changes_build_the_model_the_run_folder_records(tmp_path):
    options = loop.TrainOptions(model="vq_digits", config={"rotation_trick": False, "num_codes": 64}, steps=2,
                                batch_size=8, eval_examples=8, model_dir=str(tmp_path / "run"), verbose=False)
    trainer = loop.Trainer(options)
    assert not trainer.model.vq.rotation_trick and trainer.model.code_layout().num_codes == (64,)
    assert zoo.build("vq_digits").vq.rotation_trick  # the entry keeps its own configuration
    trainer.run()
    model = zoo.load(str(tmp_path / "run"))
    assert model.get_config()["rotation_trick"] is False and model.bits() == 16 * 16 * 6
    with pytest.raises(ValueError, match=r"vq_digits \(vq_ae\) cannot be built with config \{'rotation': False\}.*"
                                         r"Its configuration keys: .*rotation_trick"):
        loop.Trainer(loop.TrainOptions(model="vq_digits", config={"rotation": False}, verbose=False))
