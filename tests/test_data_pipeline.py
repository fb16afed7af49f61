import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from fixtures import make_folders_dataset, write_image
from gimefive_tf.cli import run_cli
from gimefive_tf.data import (class_weights, decode_image, load_arrays, make_dataset,
                              read_dataset, stratified_split, training_stream)
from gimefive_tf.data.__main__ import main as data_main
from gimefive_tf.data.augment import AugmentConfig, batch_mixer, image_augmentation
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.labels import EMOTIONS


@pytest.mark.parametrize("name, shape, dtype", [
    ("rgb.png", (64, 64, 3), np.uint8),
    ("gray.png", (64, 64), np.uint8),
    ("rgba.png", (64, 64, 4), np.uint8),
    ("deep.png", (64, 64, 3), np.uint16),
    ("rgb.bmp", (64, 64, 3), np.uint8),
])
def test_decoder_reads_every_format_exactly(tmp_path, name, shape, dtype):
    pixels = write_image(tmp_path / name, shape, dtype=dtype)
    decoded = decode_image(tf.io.read_file(str(tmp_path / name))).numpy()
    assert decoded.shape == (64, 64, 3) and decoded.dtype == np.uint8
    expected = pixels >> 8 if dtype == np.uint16 else pixels
    expected = np.repeat(expected[..., None], 3, -1) if expected.ndim == 2 else expected[..., :3]
    np.testing.assert_array_equal(decoded, expected.astype(np.uint8))


def test_decoder_resizes_any_size_like_pil(tmp_path):
    pixels = write_image(tmp_path / "big.png", (200, 150, 3), seed=3)
    decoded = decode_image(tf.io.read_file(str(tmp_path / "big.png"))).numpy()
    reference = np.asarray(Image.fromarray(pixels).resize((64, 64), Image.BILINEAR))
    assert decoded.shape == (64, 64, 3)
    assert np.abs(decoded.astype(int) - reference).mean() < 3  # antialiased bilinear, like PIL


def test_dataset_batches_uint8_rgb_with_labels(tmp_path):
    make_folders_dataset(tmp_path, per_class=3, split_dirs=None)
    table = read_dataset(tmp_path)
    images, labels = next(iter(make_dataset(table, batch_size=100)))
    assert images.shape == (18, 64, 64, 3) and images.dtype == tf.uint8
    assert sorted(labels.numpy().tolist()) == sorted(table.labels.tolist())


def test_training_stream_resumes_with_the_same_batches(tmp_path):
    make_folders_dataset(tmp_path, per_class=3, split_dirs=None)
    table = read_dataset(tmp_path)
    tf.random.set_seed(7)
    full, steps = training_stream(table, batch_size=4, seed=3)
    assert steps == 5
    uninterrupted = [y.numpy().tolist() for _, y in full.take(3 * steps)]
    tf.random.set_seed(7)
    resumed, _ = training_stream(table, batch_size=4, seed=3, start_epoch=2)
    assert [y.numpy().tolist() for _, y in resumed.take(steps)] == uninterrupted[2 * steps:]
    # every epoch is a permutation of the whole set, and epochs differ in order
    epochs = [sum(uninterrupted[e * steps:(e + 1) * steps], []) for e in range(3)]
    assert all(sorted(e) == sorted(table.labels.tolist()) for e in epochs)
    assert epochs[0] != epochs[1]


def test_training_stream_yields_each_images_own_target(tmp_path):
    """Distillation's per-image targets travel with their images through the shuffle."""
    make_folders_dataset(tmp_path, per_class=3, split_dirs=None)
    table = read_dataset(tmp_path)
    images, labels = load_arrays(table)
    targets = np.stack([np.arange(len(table)), labels], axis=1).astype(np.float32)
    stream, steps = training_stream(table, batch_size=4, seed=3, targets=targets)
    seen = []
    for batch_images, batch_targets in stream.take(steps):
        for image, (row, label) in zip(batch_images.numpy(), batch_targets.numpy()):
            np.testing.assert_array_equal(image, images[int(row)])
            assert label == labels[int(row)]
            seen.append(int(row))
    assert sorted(seen) == list(range(len(table)))
    with pytest.raises(GiMeFiveError, match="one vector per image"):
        training_stream(table, targets=targets[:-1])


def test_stratified_split_is_seeded_disjoint_and_proportional(tmp_path):
    make_folders_dataset(tmp_path, per_class=10, split_dirs=None)
    table = read_dataset(tmp_path)
    train, val = stratified_split(table, 0.2, seed=1)
    assert val.per_class() == {name: 2 for name in EMOTIONS}
    assert set(train.frame["source"]).isdisjoint(val.frame["source"])
    assert len(train) + len(val) == len(table)
    again = stratified_split(table, 0.2, seed=1)[1]
    assert again.frame["source"].tolist() == val.frame["source"].tolist()
    assert stratified_split(table, 0.2, seed=2)[1].frame["source"].tolist() != \
        val.frame["source"].tolist()
    with pytest.raises(GiMeFiveError, match="val_split=1.5"):
        stratified_split(table, 1.5)


def test_class_weights_balance_the_classes(tmp_path):
    for label, count in enumerate([6, 3, 1, 1, 1, 0]):
        for i in range(count):
            write_image(tmp_path / str(label) / f"{i}.png", (8, 8, 3), seed=i)
    weights = class_weights(read_dataset(tmp_path))
    assert weights[0] == pytest.approx(12 / (5 * 6)) and weights[2] == pytest.approx(12 / 5)
    assert weights[5] == 0


def test_augmentation_is_off_by_default_and_each_option_switches_on():
    assert image_augmentation(AugmentConfig(), 64) is None and batch_mixer(AugmentConfig()) is None
    config = AugmentConfig(flip=True, rotation=10, crop_padding=4, erasing=0.5, brightness=0.2,
                           contrast=0.2)
    stack = image_augmentation(config, 64, seed=1)
    assert [layer.name for layer in stack.layers] == [
        "aug_flip", "aug_rotation", "aug_crop", "aug_brightness", "aug_contrast",
        "aug_erasing"]
    x = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3)).astype("float32")
    trained = np.asarray(stack(x, training=True))
    assert trained.shape == x.shape and not np.allclose(trained, x)
    np.testing.assert_allclose(np.asarray(stack(x, training=False)), x, atol=1e-4)


def test_mixup_mixes_labels_in_the_batch():
    mix = batch_mixer(AugmentConfig(mixup=0.4), seed=0)
    images = tf.constant(np.random.default_rng(0).integers(0, 256, (8, 8, 8, 3)), tf.uint8)
    labels = tf.one_hot(tf.range(8) % 6, 6)
    mixed_images, mixed_labels = mix(images, labels)
    np.testing.assert_allclose(mixed_labels.numpy().sum(1), 1, atol=1e-5)
    assert (mixed_labels.numpy().max(1) < 1 - 1e-3).any()


@pytest.mark.parametrize("bad", [{"rotation": -1}, {"erasing": 2}, {"flip": "yes"}])
def test_bad_augment_options(bad):
    with pytest.raises(GiMeFiveError, match="augment"):
        AugmentConfig(**bad)


def test_stats_json_and_table(tmp_path, capsys):
    make_folders_dataset(tmp_path / "set", per_class=2)
    assert data_main(["stats", str(tmp_path / "set"), "--json",
                      "--plot", str(tmp_path / "counts.png")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["layout"] == "folders" and summary["total"] == 24
    assert summary["per_class"] == {name: 4 for name in EMOTIONS}
    assert summary["dropped"] == {"neutral": 4, "contempt": 4} and summary["skipped"] == 0
    assert (tmp_path / "counts.png").stat().st_size > 1000
    assert data_main(["stats", str(tmp_path / "set")]) == 0
    assert "happiness" in capsys.readouterr().out.splitlines()[0]


def test_stats_on_a_missing_path_is_one_clear_line(tmp_path, capsys):
    assert run_cli(data_main, ["stats", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "does not exist" in err[0]


def test_split_export_and_merge_round_trip(tmp_path, capsys):
    make_folders_dataset(tmp_path / "a", per_class=5, split_dirs=None)
    assert data_main(["split", str(tmp_path / "a"), "--out", str(tmp_path / "s"),
                      "--val-split", "0.2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["val"]["per_class"] == {name: 1 for name in EMOTIONS}
    val = read_dataset(tmp_path / "s" / "val_labels.csv")
    assert len(val) == 6 and len(read_dataset(tmp_path / "s" / "train_labels.csv")) == 24
    # nothing is overwritten
    assert run_cli(data_main, ["split", str(tmp_path / "a"), "--out", str(tmp_path / "s")]) == 2
    assert "is not empty; nothing was overwritten" in capsys.readouterr().err

    assert data_main(["export-csv", str(tmp_path / "a"), "--out", str(tmp_path / "e")]) == 0
    assert capsys.readouterr().out.startswith("all: 30 images, labels in ")
    exported = read_dataset(tmp_path / "e")
    assert exported.per_class() == read_dataset(tmp_path / "a").per_class()
    first = np.asarray(Image.open(exported.frame["source"][0]))
    assert first.shape == (64, 64, 3)

    assert data_main(["merge", str(tmp_path / "a"), str(tmp_path / "e"), "--out",
                      str(tmp_path / "m"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 60
    merged = read_dataset(tmp_path / "m")
    assert merged.per_class() == {name: 10 for name in EMOTIONS}
    header = (tmp_path / "m" / "merged_labels.csv").read_text().splitlines()[0]
    assert header == "file,label,source"


@pytest.mark.data
def test_stats_json_on_shared_rafdb(datasets_dir, capsys):
    assert data_main(["stats", str(datasets_dir / "RAF-DB"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert list(summary["per_class"].values()) == [4772, 1290, 1982, 705, 717, 281]
    assert summary["total"] == 9747
