import pytest

from fixtures import (make_fer2013_csv, make_folders_dataset, make_rafdb_dataset,
                      write_corrupt_files, write_image)
from gimefive_tf.data import detect_layout, read_dataset
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.labels import EMOTIONS


def _csv_dataset(root, lines, images):
    for i, name in enumerate(images):
        write_image(root / "train" / name, (10, 10, 3), seed=i)
    (root / "train_labels.csv").write_text("\n".join(lines) + "\n")


def test_headerless_csv_keeps_its_first_row(tmp_path):
    _csv_dataset(tmp_path, ["a.jpg,0", "b.jpg,5", "c.jpg,2"], ["a.jpg", "b.jpg", "c.jpg"])
    table = read_dataset(tmp_path)
    assert table.layout == "csv" and len(table) == 3
    assert table.labels.tolist() == [0, 5, 2]
    assert table.frame["source"][0].endswith("train/a.jpg")
    assert table.splits() == ["train"]


def test_csv_with_header_and_label_names(tmp_path):
    _csv_dataset(tmp_path, ["file,label", "a.jpg,Happy", "b.jpg,fearful", "c.jpg,neutral"],
                 ["a.jpg", "b.jpg", "c.jpg"])
    table = read_dataset(tmp_path / "train_labels.csv")
    assert table.labels.tolist() == [0, 5]
    assert table.dropped == {"neutral": 1}


def test_csv_naming_missing_files_names_the_first_few(tmp_path):
    _csv_dataset(tmp_path, ["a.jpg,0", "gone1.jpg,1", "gone2.jpg,1"], ["a.jpg"])
    with pytest.raises(GiMeFiveError, match=r"2 file\(s\).*gone1.jpg.*gone2.jpg"):
        read_dataset(tmp_path)


def test_csv_with_an_unknown_label_is_an_error(tmp_path):
    _csv_dataset(tmp_path, ["a.jpg,0", "b.jpg,bored"], ["a.jpg", "b.jpg"])
    with pytest.raises(GiMeFiveError, match="unknown emotion 'bored'"):
        read_dataset(tmp_path)


def test_folders_with_synonyms_splits_and_dropped_classes(tmp_path):
    make_folders_dataset(tmp_path, per_class=2)
    assert detect_layout(tmp_path) == "folders"
    table = read_dataset(tmp_path)
    assert table.per_class() == {name: 4 for name in EMOTIONS}
    assert table.dropped == {"neutral": 4, "contempt": 4}
    assert table.splits() == ["test", "train"]
    assert len(read_dataset(tmp_path, split="train")) == 12


def test_folders_by_index_without_splits(tmp_path):
    for label in range(6):
        write_image(tmp_path / str(label) / "x.bmp", (8, 8, 3), seed=label)
    table = read_dataset(tmp_path, layout="folders")
    assert sorted(table.labels.tolist()) == list(range(6))


def test_rafdb_codes_map_to_our_order(tmp_path):
    expected = make_rafdb_dataset(tmp_path)
    assert detect_layout(tmp_path) == "rafdb"
    table = read_dataset(tmp_path, split="train")
    raf_to_ours = {1: 1, 2: 5, 3: 4, 4: 0, 5: 2, 6: 3}
    assert table.labels.tolist() == [raf_to_ours[c] for c in expected["train"] if c != 7]
    assert table.dropped == {"neutral": 1}
    assert read_dataset(tmp_path).dropped == {"neutral": 2}


def test_fer2013_csv_codes_usage_and_bad_rows(tmp_path):
    rows = [(0, "Training"), (1, "Training"), (2, "PublicTest"), (3, "Training"),
            (4, "PrivateTest"), (5, "Training"), (6, "Training")]
    make_fer2013_csv(tmp_path / "fer2013.csv", rows)
    with open(tmp_path / "fer2013.csv", "a") as handle:
        handle.write("3,1 2 3,Training\n")  # not a square image
    assert detect_layout(tmp_path / "fer2013.csv") == "fer2013"
    table = read_dataset(tmp_path)
    fer_to_ours = {0: 3, 1: 4, 2: 5, 3: 0, 4: 2, 5: 1}
    assert table.labels.tolist() == [fer_to_ours[c] for c, _ in rows if c != 6]
    assert table.dropped == {"neutral": 1}
    assert len(table.skipped) == 1 and "square" in table.skipped[0][1]
    assert table.pixels.shape == (6, 48, 48, 1)
    training = read_dataset(tmp_path / "fer2013.csv", usage="Training")
    assert training.labels.tolist() == [3, 4, 0, 1]
    with pytest.raises(GiMeFiveError, match="usage Public is not one of"):
        read_dataset(tmp_path, usage="Public")


def test_unreadable_images_are_skipped_counted_and_listed(tmp_path):
    bad = write_corrupt_files(tmp_path / "happy")
    write_image(tmp_path / "happy" / "good.jpg", (30, 30, 3))
    write_image(tmp_path / "sad" / "good.png", (30, 30, 3))
    table = read_dataset(tmp_path)
    assert len(table) == 2
    assert sorted(source.split("/")[-1] for source, _ in table.skipped) == sorted(bad)
    assert table.summary()["skipped"] == 3


def test_bad_paths_and_layouts(tmp_path):
    with pytest.raises(GiMeFiveError, match="does not exist"):
        read_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GiMeFiveError, match="cannot tell the layout"):
        read_dataset(tmp_path / "empty")
    with pytest.raises(GiMeFiveError, match="layout='xml' is not allowed"):
        read_dataset(tmp_path, layout="xml")


@pytest.mark.data
@pytest.mark.parametrize("name, counts", [
    ("RAF-DB", [4772, 1290, 1982, 705, 717, 281]),  # the published basic train split
    # the published Training usage has 7215 and 3995: the shared copy lacks one of each
    ("FER2013", [7214, 3171, 4830, 3994, 436, 4097]),
])
def test_shared_train_sets_have_the_expected_counts(datasets_dir, name, counts):
    table = read_dataset(datasets_dir / name)
    assert table.layout == "csv"
    assert list(table.per_class().values()) == counts
    assert len(table) == sum(counts) and not table.skipped and not table.dropped
