"""Bad input, generated here, through every command in process (run_cli): never a traceback;
either exit 2 with one `error:` line saying what is wrong, or exit 0 with the right result;
and the user's files (sentinels) are never changed."""

import json
import os
import pathlib

import cv2
import numpy as np
import pytest
from PIL import Image

from gimefive_tf.batch import main as batch_main
from gimefive_tf.cli import run_cli
from gimefive_tf.data.__main__ import main as data_main
from gimefive_tf.evaluate.__main__ import main as evaluate_main
from gimefive_tf.explain.__main__ import main as explain_main
from gimefive_tf.export.__main__ import main as export_main
from gimefive_tf.predict import main as predict_main
from gimefive_tf.scores import main as scores_main
from gimefive_tf.train import main as train_main
from gimefive_tf.tune import main as tune_main
from gimefive_tf.video.__main__ import main as video_main


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Every bad (and oddly good) input of the module, written once."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    paths = {}

    def image(name, pixels, **options):
        path = root / name
        Image.fromarray(pixels).save(path, **options)
        paths[name] = path
        return path

    image("png16.png", (rng.integers(0, 65535, (48, 64))).astype(np.uint16))
    image("cmyk.jpg", noise)
    Image.fromarray(noise).convert("CMYK").save(root / "cmyk.jpg")
    frames = [Image.fromarray(noise), Image.fromarray(255 - noise)]
    frames[0].save(root / "animated.gif", save_all=True, append_images=frames[1:])
    image("picture.webp", noise)
    image("picture.tif", noise)
    (root / "drawing.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    image("one_pixel.png", np.zeros((1, 1, 3), np.uint8))
    cv2.imwrite(str(root / "huge.png"), np.full((10_000, 10_000), 90, np.uint8))
    image("visage_é_😀.png", noise)
    image("-dash.png", noise)
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.jpg").write_text("not a jpeg")
    loop = root / "loop"
    loop.mkdir()
    image("loop/a.png", noise)
    (loop / "again").symlink_to(loop, target_is_directory=True)
    (root / "no_images").mkdir()
    (root / "no_images" / "notes.txt").write_text("nothing to see")
    # CSVs of the csv layout, next to six images
    (root / "set").mkdir()
    for index in range(6):
        cv2.imwrite(str(root / "set" / f"{index}.jpg"), np.full((64, 64, 3), 40 * index, np.uint8))

    def labels(name, text, **options):
        folder = root / f"csv_{name}"
        folder.mkdir()
        for index in range(6):
            os.symlink(root / "set" / f"{index}.jpg", folder / f"{index}.jpg")
        path = folder / "labels.csv"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, **options)
        return path

    paths["typo"] = labels("typo", "0.jpg,hapy\n1.jpg,1\n2.jpg,2\n")
    paths["header"] = labels("header", "file,label\n0.jpg,happiness\n1.jpg,1\n")
    paths["duplicates"] = labels("duplicates", "0.jpg,0\n0.jpg,0\n1.jpg,1\n")
    paths["one_column"] = labels("one_column", "0.jpg,0\n1.jpg\n2.jpg,2\n")
    paths["latin1"] = labels("latin1", "0.jpg,0\ncaf\xe9.jpg,1\n".encode("latin-1"))
    paths["bom"] = labels("bom", "0.jpg,0\n1.jpg,1\n", encoding="utf-8-sig")
    paths["crlf"] = labels("crlf", "0.jpg,0\r\n1.jpg,1\r\n", newline="")
    paths["semicolon"] = labels("semicolon", "0.jpg;0\n1.jpg;1\n")
    paths["unknown"] = labels("unknown", "0.jpg,0\n1.jpg,9\n")
    paths["missing_file"] = labels("missing_file", "0.jpg,0\nnope.jpg,1\n")
    paths["unreadable"] = labels("unreadable", "0.jpg,0\n1.jpg,1\nbroken.jpg,2\n")
    (root / "csv_unreadable" / "broken.jpg").write_text("not a jpeg")
    pixels = " ".join(["7"] * 2304)
    (root / "fer").mkdir()
    (root / "fer" / "fer2013.csv").write_text(
        "emotion,pixels,Usage\n"
        f"3,{pixels},Training\n"
        f"3,{pixels.replace('7', 'x', 1)},Training\n"
        f"z,{pixels},Training\n"
        f"4,{pixels},Training\n")
    paths["fer2013"] = root / "fer" / "fer2013.csv"
    # a folder of photos: two without a face, one unreadable
    (root / "faceless").mkdir()
    for index in range(2):
        cv2.imwrite(str(root / "faceless" / f"wall{index}.jpg"), np.full((96, 96, 3), 90, np.uint8))
    (root / "faceless" / "broken.jpg").write_text("not a jpeg")
    (root / "faceless" / "gone.jpg").symlink_to(root / "nowhere.jpg")  # a link to nothing
    (root / "photo.mp4").write_bytes(cv2.imencode(".jpg", noise)[1].tobytes())  # named .mp4
    (root / "broken.yaml").write_text("epochs: [1, 2\nlr: 0.1\n")
    # videos
    (root / "not_a_video.mp4").write_text("no frames here")
    writer = cv2.VideoWriter(str(root / "blank.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10,
                             (160, 120))
    for _ in range(12):
        writer.write(np.full((120, 160, 3), 128, np.uint8))
    writer.release()
    # models: a 10-output one, a folder, a text file named .keras, an .h5 name
    from gimefive_tf.models import create_model

    ten = create_model("gimefive", base_filters=8, num_classes=10)
    ten.save(root / "ten_outputs.keras")
    (root / "fake.keras").write_text("not a model")
    (root / "folder.keras").mkdir()
    (root / "model.h5").write_text("old format")
    # the user's own files, which no command may change
    sentinels = root / "mine"
    sentinels.mkdir()
    for name in ("plot.png", "skipped.csv", "scores.csv", "faces.png", "notes.txt"):
        (sentinels / name).write_text(f"the user's {name}")
    (sentinels / "export").mkdir()
    (sentinels / "export" / "report.json").write_text('{"the user": "report"}')
    return root


def sentinel_state(root):
    mine = root / "mine"
    return {str(p): p.read_bytes() for p in sorted(mine.rglob("*")) if p.is_file()}


def cases(root, model):
    """(id, main, args, expectation): "error: <words>" or a check of the JSON printed."""
    r, mine = str(root), root / "mine"
    tiny = ["--model", model]

    def records(expected_count, emotion=True):
        def check(out):
            rows = json.loads(out)
            assert len(rows) == expected_count, rows
            if emotion:
                assert all(row["emotion"] or row["reason"] == "no face found" for row in rows)
        return check

    def summary(**expected):
        def check(out):
            data = json.loads(out)
            for key, value in expected.items():
                assert data[key] == value, (key, data[key])
        return check

    def exported(images):
        def check(out):
            assert sum(split["images"] for split in json.loads(out).values()
                       if isinstance(split, dict)) == images, out
        return check

    def text(*fragments):
        def check(out):
            for fragment in fragments:
                assert fragment in out, (fragment, out)
        return check

    return [
        # one input convention: DATA positional or --data, --layout and --limit everywhere
        ("evaluate DATA positional", evaluate_main, tiny + [f"{r}/csv_bom", "--json"],
         summary(images=2)),
        ("evaluate --limit 1", evaluate_main, tiny + ["--data", f"{r}/csv_bom", "--limit", "1",
                                                      "--json"], summary(images=1)),
        ("evaluate without data", evaluate_main, tiny, "no data given"),
        ("metrics with two DATA", explain_main, ["metrics", f"{r}/csv_bom", "--data",
                                                 f"{r}/csv_crlf"], "one DATA is read here"),
        ("unknown --layout", evaluate_main, tiny + [f"{r}/csv_bom", "--layout", "affectnet"],
         "invalid choice: 'affectnet'"),
        ("train without data", train_main, ["--epochs", "1"], "no training data"),
        ("predict --limit 1", predict_main, tiny + [f"{r}/set", "--crop", "none", "--limit", "1",
                                                    "--json"], records(1)),
        ("scores --limit 2", scores_main, tiny + [f"{r}/set", "--limit", "2", "--out",
                                                  f"{r}/limited.csv", "--json"],
         summary(images=2)),
        ("scores faces, JSON", scores_main, tiny + [f"{r}/faceless", "--crop", "face", "--out",
                                                    f"{r}/faceless.csv", "--json"],
         summary(images=0, skipped=2, without_face=2)),
        ("scores faces, text", scores_main, tiny + [f"{r}/faceless", "--crop", "face", "--out",
                                                    f"{r}/faceless_text.csv"],
         text("2 skipped (unreadable)", "2 without a face")),
        ("a link to nowhere in a folder", predict_main, tiny + [f"{r}/faceless", "--json"],
         lambda out: [row["reason"] for row in json.loads(out)
                      if row["input"].endswith("gone.jpg")] == [
             f"{r}/faceless/gone.jpg is not a readable image"] or pytest.fail(out)),
        ("evaluate lists unreadable images", evaluate_main,
         tiny + [f"{r}/csv_unreadable", "--json"], summary(images=2, skipped=1)),
        ("activations of a dense layer", explain_main,
         ["activations", f"{r}/set/0.jpg", "--crop", "none", "--layer", "logits", "--model",
          model, "--out", f"{r}/acts"], "no feature map logits"),
        ("maps into a non-empty folder", explain_main,
         ["maps", f"{r}/set/0.jpg", "--crop", "none", "--model", model, "--out", str(mine)],
         "is not empty"),
        ("a photo named .mp4", video_main, [f"{r}/photo.mp4", "--model", model],
         "is a still image, not a video"),
        ("export name with a folder", export_main, tiny + ["--out", f"{r}/e", "--name",
                                                           "../../evil"], "must be a plain name"),
        ("merge one dataset twice", data_main, ["merge", f"{r}/csv_bom", f"{r}/csv_bom/",
                                                "--out", f"{r}/m"], "given more than once"),
        ("video --out not a video", video_main, [f"{r}/blank.mp4", "--out", f"{r}/v.txt"],
         "name a video file"),
        ("broken YAML search space", tune_main, [f"{r}/csv_bom", "--space", f"{r}/broken.yaml"],
         "not valid YAML (line"),
        ("broken YAML config", train_main, [f"{r}/csv_bom", "--config", f"{r}/broken.yaml"],
         "is not valid YAML (line"),
        ("explain alpha 2", explain_main, ["maps", f"{r}/set", "--alpha", "2"],
         "--alpha: 2 must be at most 1"),
        ("metrics steps 0", explain_main, ["metrics", f"{r}/csv_bom", "--steps", "0"],
         "--steps: 0 must be at least 1"),
        # pictures of every kind, through predict
        ("16-bit png", predict_main, tiny + [f"{r}/png16.png", "--json"], records(1)),
        ("cmyk jpeg", predict_main, tiny + [f"{r}/cmyk.jpg", "--json"], records(1)),
        ("animated gif", predict_main, tiny + [f"{r}/animated.gif", "--json"], records(1)),
        ("webp", predict_main, tiny + [f"{r}/picture.webp", "--json"], records(1)),
        ("tiff", predict_main, tiny + [f"{r}/picture.tif", "--json"], records(1)),
        ("svg", predict_main, tiny + [f"{r}/drawing.svg"], "error: " + f"{r}/drawing.svg is not a readable image"),
        ("1x1 image", predict_main, tiny + [f"{r}/one_pixel.png", "--json"], records(1)),
        ("10000x10000 image", predict_main, tiny + [f"{r}/huge.png", "--json"], records(1)),
        ("unicode name", predict_main, tiny + [f"{r}/visage_é_😀.png", "--json"], records(1)),
        ("leading dash after --", predict_main, tiny + ["--json", "--", "-dash.png"], records(1)),
        ("leading dash as an option", predict_main, tiny + ["-dash.png"],
         "error: unrecognized arguments: -dash.png"),
        ("symlink loop", predict_main, tiny + [f"{r}/loop", "--json"], records(1)),
        ("empty file", predict_main, tiny + [f"{r}/empty.jpg"], "is not a readable image"),
        ("text named .jpg", predict_main, tiny + [f"{r}/text.jpg"], "is not a readable image"),
        ("missing path", predict_main, tiny + [f"{r}/nowhere.jpg"], "does not exist"),
        ("folder without images", predict_main, tiny + [f"{r}/no_images"], "no images in"),
        # the model contract
        ("10 outputs, predict", predict_main, ["--model", f"{r}/ten_outputs.keras"],
         "gives 10 outputs per image"),
        ("10 outputs, evaluate", evaluate_main,
         ["--model", f"{r}/ten_outputs.keras", "--data", f"{r}/csv_bom"], "gives 10 outputs"),
        ("model is a folder", predict_main, ["--model", f"{r}/folder.keras"], "is a folder"),
        ("model is text", predict_main, ["--model", f"{r}/fake.keras"], "is not a Keras model"),
        ("model is .h5", predict_main, ["--model", f"{r}/model.h5"], "is not a .keras file"),
        # numbers checked when parsed
        ("scores batch 0", scores_main, tiny + [f"{r}/set", "--batch-size", "0"],
         "--batch-size: 0 must be at least 1"),
        ("evaluate batch 0", evaluate_main, tiny + ["--data", f"{r}/csv_bom", "--batch-size",
                                                    "0"], "must be at least 1"),
        ("export limit 0", export_main, tiny + ["--out", f"{r}/x", "--limit", "0"],
         "--limit: 0 must be at least 1"),
        ("explain limit 0", explain_main, ["metrics", "--data", f"{r}/csv_bom", "--limit", "0"],
         "--limit: 0 must be at least 1"),
        ("video max frames 0", video_main, [f"{r}/blank.mp4", "--max-frames", "0"],
         "--max-frames: 0 must be at least 1"),
        ("train lr nan", train_main, ["--lr", "nan"], "nan is not a finite number"),
        ("train val split 1.5", train_main, ["--val-split", "1.5"], "must be less than 1"),
        ("export-csv size 0", data_main, ["export-csv", f"{r}/csv_bom", "--out", f"{r}/ex",
                                          "--size", "0"], "--size: 0 must be at least 1"),
        ("init-from a text file", train_main, ["--data", f"{r}/csv_bom", "--out", f"{r}/run",
                                               "--init-from", f"{r}/mine/notes.txt"],
         "is not a .keras file"),
        ("unknown detector", predict_main, ["--detector", "nope"], "invalid choice: 'nope'"),
        # readers that never guess
        ("typo'd first label", data_main, ["stats", str(root / "csv_typo")],
         "labels.csv:1: unknown emotion 'hapy'"),
        ("a real header", data_main, ["stats", str(root / "csv_header"), "--json"],
         summary(total=2)),
        ("duplicate rows", data_main, ["stats", str(root / "csv_duplicates"), "--json"],
         summary(total=3, duplicates=1)),
        ("duplicates dropped when asked", data_main,
         ["export-csv", str(root / "csv_duplicates"), "--out", f"{r}/deduplicated",
          "--drop-duplicates", "--json"], exported(2)),
        ("duplicates kept otherwise", data_main,
         ["export-csv", str(root / "csv_duplicates"), "--out", f"{r}/duplicated", "--json"],
         exported(3)),
        ("one-column row", data_main, ["stats", str(root / "csv_one_column")],
         "labels.csv:2: expected 2 columns"),
        ("latin-1 csv", data_main, ["stats", str(root / "csv_latin1")],
         "labels.csv:2: not UTF-8 text"),
        ("bom csv", data_main, ["stats", str(root / "csv_bom"), "--json"], summary(total=2)),
        ("crlf csv", data_main, ["stats", str(root / "csv_crlf"), "--json"], summary(total=2)),
        ("semicolon csv", data_main, ["stats", str(root / "csv_semicolon")], "';'-separated"),
        ("unknown label", data_main, ["stats", str(root / "csv_unknown")],
         "labels.csv:2: unknown emotion '9'"),
        ("named file missing", data_main, ["stats", str(root / "csv_missing_file")],
         "do not exist"),
        ("fer2013 bad pixels and code", data_main, ["stats", str(root / "fer"), "--json"],
         summary(total=2, skipped=2)),
        # nothing a user wrote is overwritten; unwritable outputs are one line
        ("stats plot exists", data_main, ["stats", f"{r}/csv_bom", "--plot",
                                          str(mine / "plot.png")], "already exists"),
        ("stats skipped log exists", data_main, ["stats", f"{r}/csv_bom", "--skipped-log",
                                                 str(mine / "skipped.csv")], "already exists"),
        ("export onto a report", export_main, tiny + ["--out", str(mine / "export"),
                                                     "--formats", "tflite"], "report.json"),
        ("scores out exists", scores_main, tiny + [f"{r}/set", "--out",
                                                   str(mine / "scores.csv")], "already exists"),
        ("scores out under a file", scores_main, tiny + [f"{r}/set", "--out",
                                                         str(mine / "notes.txt" / "s.csv")],
         "notes.txt is a file, not a folder"),
        ("predict plot exists", predict_main, tiny + ["--plot", str(mine / "faces.png")],
         "already exists"),
        ("evaluate out is a file", evaluate_main, tiny + ["--data", f"{r}/csv_bom", "--out",
                                                          str(mine / "notes.txt")],
         "notes.txt"),
        ("split out is a file", data_main, ["split", f"{r}/csv_bom", "--out",
                                            str(mine / "notes.txt")], "notes.txt"),
        ("train out is a file", train_main, ["--data", f"{r}/csv_bom", "--out",
                                             str(mine / "notes.txt"), "--epochs", "1"],
         "is a file"),
        # videos
        ("not a video", video_main, [f"{r}/not_a_video.mp4", "--out", f"{r}/v.mp4"],
         "not_a_video.mp4"),
        ("frames of not a video", data_main, ["extract-frames", f"{r}/not_a_video.mp4", "--out",
                                              f"{r}/frames"], "not_a_video.mp4"),
        # nothing dropped or doubled without a word; an existing --out treated alike
        ("export-csv says what it skips", data_main,
         ["export-csv", f"{r}/fer", "--out", f"{r}/fer_out", "--json"],
         (lambda out: exported(2)(out) or summary(skipped=2)(out),
          ["skipped ", "fer2013.csv"])),
        ("merge says what two datasets share", data_main,
         ["merge", f"{r}/csv_bom", f"{r}/csv_crlf", "--out", f"{r}/shared", "--json"],
         (summary(images=4, named_by_another_dataset=2), ["2 image(s) are named by more"])),
        ("merge drops what two datasets share when asked", data_main,
         ["merge", f"{r}/csv_bom", f"{r}/csv_crlf", "--out", f"{r}/shared_once", "--json",
          "--drop-duplicates"], (summary(images=2), ["dropped 2 image(s)"])),
        ("export-csv into a non-empty folder", data_main,
         ["export-csv", f"{r}/csv_bom", "--out", str(mine)], "is not empty"),
        ("merge into a non-empty folder", data_main,
         ["merge", f"{r}/csv_bom", "--out", str(mine)], "is not empty"),
        ("split into a non-empty folder", data_main,
         ["split", f"{r}/csv_bom", "--out", str(mine)], "is not empty"),
        ("evaluate into a non-empty folder", evaluate_main,
         tiny + ["--data", f"{r}/csv_bom", "--out", str(mine)], "is not empty"),
        ("frames into a non-empty folder", data_main,
         ["extract-frames", f"{r}/blank.mp4", "--out", str(mine)], "is not empty"),
        ("scene crops into a non-empty folder", data_main,
         ["scene-crops", f"{r}/csv_bom", "--out", str(mine)], "is not empty"),
        ("scene crops naming CSV pixels as files", data_main,
         ["scene-crops", f"{r}/fer", "--out", f"{r}/scenes", "--with-source"], "CSV pixels"),
        ("scene crops of pictures without a face", data_main,
         ["scene-crops", f"{r}/csv_bom", "--out", f"{r}/faceless_scenes"], "found none"),
        ("scene crops of a missing dataset", data_main,
         ["scene-crops", f"{r}/nowhere.csv", "--out", f"{r}/scenes", "--with-source"],
         "does not exist"),
        # a glob, folder or list that yields no picture
        ("predict glob without pictures", predict_main, tiny + [f"{r}/no_images/*"],
         "matches no picture"),
        ("explain glob without pictures", explain_main,
         ["maps", f"{r}/no_images/*.jpg", "--model", model, "--out", f"{r}/globbed"],
         "matches no picture"),
        ("scores glob without pictures", scores_main,
         tiny + [f"{r}/no_images/**", "--out", f"{r}/globbed.csv"], "matches no picture"),
        ("batch glob without pictures", batch_main,
         [f"{r}/no_images/*", "--model", model, "--out", f"{r}/globbed_rows"],
         "matches no image or video"),
    ]


@pytest.fixture(scope="module")
def all_cases(corpus, model_path):
    return cases(corpus, model_path)


CASE_IDS = [case[0] for case in cases(pathlib.Path("/corpus"), "tiny.keras")]


@pytest.mark.parametrize("index", range(len(CASE_IDS)), ids=CASE_IDS)
def test_every_bad_input_is_clean(all_cases, corpus, index, capsys, monkeypatch):
    name, main, args, expected = all_cases[index]
    monkeypatch.chdir(corpus)
    before = sentinel_state(corpus)
    code = run_cli(main, args)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if isinstance(expected, str):
        lines = captured.err.strip().splitlines()
        assert code == 2, (name, captured.err[-500:])
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
        assert expected.removeprefix("error: ") in lines[0], lines[0]
    else:
        check, said = expected if isinstance(expected, tuple) else (expected, [])
        assert code == 0, (name, captured.err[-500:])
        check(captured.out)
        for words in said:  # on stderr, in text and JSON modes alike
            assert words in captured.err, (words, captured.err)
    assert sentinel_state(corpus) == before  # no user file changed


def test_a_face_free_video_says_so(corpus, model_path, tmp_path, capsys):
    out = tmp_path / "annotated.mp4"
    assert run_cli(video_main, [str(corpus / "blank.mp4"), "--model", model_path, "--out",
                                str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 12 and summary["faces"] == 0
    assert out.stat().st_size > 0


def test_a_truncated_jpeg_is_one_line_even_below_python(tmp_path):
    """libjpeg writes its own complaint straight to file descriptor 2; a command shows only its
    one line (checked in a real process: capsys cannot see below Python)."""
    import subprocess
    import sys

    encoded = cv2.imencode(".jpg", np.full((64, 64, 3), 100, np.uint8))[1].tobytes()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(encoded[:len(encoded) // 2])
    result = subprocess.run([sys.executable, "-m", "gimefive_tf.predict", str(broken)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr == f"error: {broken} is not a readable image\n"
