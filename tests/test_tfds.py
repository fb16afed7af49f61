import numpy as np
import pytest

from fixtures import make_fer2013_csv, make_rafdb_dataset

tfds = pytest.importorskip("tensorflow_datasets")
import gimefive_tf.data.tfds_builders  # noqa: E402,F401  (registers the builders)
from gimefive_tf.labels import EMOTIONS  # noqa: E402


def load(name, manual_dir, data_dir, split):
    config = tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    return tfds.load(name, split=split, data_dir=str(data_dir), as_supervised=True,
                     download_and_prepare_kwargs={"download_config": config})


def test_rafdb_builder_prepares_offline_from_the_download_layout(tmp_path):
    make_rafdb_dataset(tmp_path / "raf")
    train = list(load("gimefive_rafdb", tmp_path / "raf", tmp_path / "tfds", "train"))
    assert len(train) == 7  # eight images, one neutral dropped
    images = np.stack([image.numpy() for image, _ in train])
    assert images.shape == (7, 64, 64, 3) and images.dtype == np.uint8
    labels = sorted(int(label) for _, label in train)
    assert labels == sorted([1, 5, 4, 0, 2, 3, 0])
    builder = tfds.builder("gimefive_rafdb", data_dir=str(tmp_path / "tfds"))
    assert builder.info.features["label"].names == list(EMOTIONS)
    assert set(builder.info.splits) == {"train", "test"}


def test_fer2013_builder_maps_usage_to_splits(tmp_path):
    (tmp_path / "fer").mkdir()
    make_fer2013_csv(tmp_path / "fer" / "fer2013.csv",
                     [(3, "Training"), (0, "Training"), (6, "Training"), (5, "PublicTest"),
                      (2, "PrivateTest")])
    train = list(load("gimefive_fer2013", tmp_path / "fer", tmp_path / "tfds", "train"))
    assert sorted(int(label) for _, label in train) == [0, 3]
    test = list(load("gimefive_fer2013", tmp_path / "fer", tmp_path / "tfds", "test"))
    assert [int(label) for _, label in test] == [5]
