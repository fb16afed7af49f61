"""One list of picture formats (`gimefive_tf.pictures`), read alike by every entry point: the
same photo in each format gives its face through predict, scores, explain, the server and
batch."""

import io
import json

import numpy as np
import pytest

from gimefive_tf.analyze import demo_image
from gimefive_tf.pictures import EXTENSIONS, FORMATS, NAMES, decode_picture

SAVED_AS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".gif": "GIF",
            ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF", ".ppm": "PPM", ".pgm": "PPM"}


def encoded(picture, extension):
    from PIL import Image

    data = io.BytesIO()
    Image.fromarray(picture).save(data, SAVED_AS[extension])
    return data.getvalue()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The astronaut photo once per file ending the project reads."""
    root = tmp_path_factory.mktemp("formats")
    _, astronaut = demo_image()
    for extension in EXTENSIONS:
        (root / f"astronaut{extension}").write_bytes(encoded(astronaut, extension))
    return root


def test_the_list_covers_every_format_and_the_decoder_reads_each(folder):
    assert set(SAVED_AS) == set(EXTENSIONS) and set(SAVED_AS.values()) <= set(FORMATS)
    _, astronaut = demo_image()
    for path in sorted(folder.iterdir()):
        picture = decode_picture(path.read_bytes(), path.name)
        assert picture.shape == astronaut.shape and picture.dtype == np.uint8, path.name
    for name in ("JPEG", "PNG", "BMP", "GIF", "WebP", "TIFF", "PPM"):
        assert name in NAMES


def test_predict_scores_and_explain_read_every_format(folder, tmp_path, capsys):
    from gimefive_tf.explain.__main__ import main as explain_main
    from gimefive_tf.predict import main as predict_main
    from gimefive_tf.scores import main as scores_main

    names = sorted(p.name for p in folder.iterdir())
    assert predict_main([str(folder), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert sorted(r["input"].rsplit("/", 1)[-1] for r in records) == names
    assert all(r["emotion"] == "happiness" and r["box"] for r in records), records
    assert scores_main([str(folder), "--out", str(tmp_path / "s.csv"), "--crop", "face",
                        "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["images"], summary["skipped"], summary["without_face"]) == (len(names), 0, 0)
    assert scores_main([str(folder), "--out", str(tmp_path / "n.csv"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == len(names)  # --crop none too
    assert explain_main(["maps", str(folder), "--out", str(tmp_path / "maps"), "--json"]) == 0
    explained = json.loads(capsys.readouterr().out)
    assert len(explained if isinstance(explained, list) else explained["faces"]) == len(names)


def test_the_server_reads_every_format(tmp_path):
    from starlette.testclient import TestClient

    from gimefive_tf.loading import load_model
    from gimefive_tf.serve import Servable, create_app

    _, astronaut = demo_image()
    app = create_app(Servable.from_keras(load_model(), "gimefive"), batching=False,
                     warm_up=False, log=io.StringIO())
    with TestClient(app) as client:
        for extension in EXTENSIONS:
            answer = client.post("/v1/analyze", files={
                "image": (f"a{extension}", encoded(astronaut, extension))})
            assert answer.status_code == 200, (extension, answer.text)
            [face] = answer.json()["faces"]
            assert face["emotion"] == "happiness", extension


def test_batch_reads_every_format(folder, tmp_path, capsys):
    from gimefive_tf.batch import main as batch_main
    from test_batch import read_shards

    assert batch_main([str(folder), "--out", str(tmp_path / "rows")]) == 0
    rows = read_shards(tmp_path / "rows", "rows")
    assert sorted(name.rsplit("/", 1)[-1] for name in rows.input) == \
        sorted(p.name for p in folder.iterdir())
    assert set(rows.emotion) == {"happiness"}


def test_jpegs_decode_to_the_pixels_pillow_browsers_and_phones_decode():
    """The accurate DCT (libjpeg's default elsewhere): TensorFlow's fast one is up to 16
    levels off, enough to move a borderline face box between the library and a device."""
    from PIL import Image
    from skimage import data

    encoded = io.BytesIO()
    Image.fromarray(data.astronaut()).save(encoded, "JPEG", quality=85)
    pillow = np.asarray(Image.open(io.BytesIO(encoded.getvalue())).convert("RGB"))
    assert np.array_equal(decode_picture(encoded.getvalue()), pillow)
