"""TensorFlow Datasets builders for six-emotion RAF-DB and FER2013, prepared from local files.

Nothing is downloaded: point `manual_dir` at your copy (any layout gimefive_tf reads):

    import tensorflow_datasets as tfds
    import gimefive_tf.data.tfds_builders  # registers the builders

    config = tfds.download.DownloadConfig(manual_dir="path/to/RAF-DB")
    train = tfds.load("gimefive_rafdb", split="train", data_dir="~/tensorflow_datasets",
                      download_and_prepare_kwargs={"download_config": config})

Each example is {"image": uint8 RGB 64x64, "label": ClassLabel over EMOTIONS, "file_name"}.
"""

import numpy as np
import tensorflow_datasets as tfds

from gimefive_tf.labels import EMOTIONS

IMAGE_SIZE = 64


class _SixEmotionBuilder(tfds.core.GeneratorBasedBuilder):
    """Shared logic: read the manual dir with gimefive_tf's readers, one TFDS split per split."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Six emotions in GiMeFive order, faces at 64x64 RGB."}
    LAYOUT = None

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 3)),
                "label": tfds.features.ClassLabel(names=list(EMOTIONS)),
                "file_name": tfds.features.Text(),
            }),
            supervised_keys=("image", "label"),
            description=self.__doc__,
        )

    def _split_generators(self, dl_manager):
        from gimefive_tf.data.readers import read_dataset

        table = read_dataset(dl_manager.manual_dir, layout=self.LAYOUT)
        splits = {}
        for split in table.splits():
            name = {"": "train", "Training": "train", "PublicTest": "validation",
                    "PrivateTest": "test", "val": "validation", "valid": "validation"}.get(
                        split, split)
            splits[name] = self._generate_examples(table.select_split(split))
        return splits

    def _generate_examples(self, table):
        from gimefive_tf.data.pipeline import decoded_images

        images = decoded_images(table, IMAGE_SIZE, cache=False).as_numpy_iterator()
        for source, (image, label) in zip(table.frame["source"], images):
            yield source, {"image": np.asarray(image), "label": int(label),
                           "file_name": str(source)}


class GimefiveRafdb(_SixEmotionBuilder):
    """RAF-DB basic expressions, six emotions (neutral dropped), from a local copy."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Request RAF-DB from its authors and point manual_dir at the folder: the RAF-DB download "
        "layout (train/1..7, train_labels.csv) or the GiMeFive csv layout both work.")


class GimefiveFer2013(_SixEmotionBuilder):
    """FER2013, six emotions (neutral dropped), from fer2013.csv or an image-folder copy."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download FER2013 (fer2013.csv, or an image-folder version) and point manual_dir at the "
        "folder holding it. Usage values become splits: Training -> train, PublicTest -> "
        "validation, PrivateTest -> test.")
