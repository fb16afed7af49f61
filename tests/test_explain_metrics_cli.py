import json

import numpy as np
import pytest

from fixtures import make_folders_dataset, write_corrupt_files, write_image
from gimefive_tf.cli import run_cli
from gimefive_tf.explain.__main__ import main as explain_main
from gimefive_tf.explain.metrics import (constant, deletion_insertion, faithfulness,
                                         randomization_check)
from gimefive_tf.explain.regions import region_shares, summarize_regions
from gimefive_tf.models import create_model
from test_explain_methods import quadrant_model


def test_deletion_and_insertion_on_an_exact_toy_predictor():
    # p(target) = share of the top-left quadrant's pixels still equal to the original image
    images = np.full((1, 8, 8, 3), 200.0, np.float32)

    def predict(batch):
        kept = (batch[:, :4, :4, 0] == 200).mean((1, 2))
        return np.stack([kept] + [np.zeros_like(kept)] * 5, 1)

    perfect = np.zeros((1, 8, 8), np.float32)
    perfect[0, :4, :4] = 1
    deletion, insertion = deletion_insertion(predict, images, perfect, np.array([0]),
                                             constant(0), steps=4)
    # 0, 16, 32, 48, 64 pixels removed: the quadrant's 16 go first -> curve 1, 0, 0, 0, 0
    assert deletion[0] == pytest.approx(0.125) and insertion[0] == pytest.approx(0.875)


def test_gradcam_beats_random_heatmaps_on_the_quadrant_model():
    images = np.random.default_rng(1).uniform(20, 255, (8, 32, 32, 3)).astype("float32")
    results = faithfulness(quadrant_model(), images, ["gradcam", "layercam"],
                           perturbation=constant(0), steps=8)
    assert set(results) == {"gradcam", "layercam", "random"}
    for method in ("gradcam", "layercam"):
        assert results[method]["deletion_auc"] < results["random"]["deletion_auc"]
        assert results[method]["insertion_auc"] > results["random"]["insertion_auc"]
        assert 0 <= results[method]["average_drop"] <= 100


def test_randomization_check_sees_the_weights_change():
    images = np.random.default_rng(2).uniform(20, 255, (6, 32, 32, 3)).astype("float32")
    model = quadrant_model()
    report = randomization_check(model, images, "gradcam")
    assert set(report) == {"method", "mean_rank_correlation", "threshold", "passed", "images"}
    assert -1 <= report["mean_rank_correlation"] <= 1
    # the quadrant mask, not the weights, shapes these maps: re-initializing leaves them alike,
    # and the check says so
    assert report["mean_rank_correlation"] > 0.5 and not report["passed"]
    # a conv net's maps come from its weights: another initialization gives unrelated maps
    gimefive = create_model("gimefive", input_size=32, conv_depth=3, base_filters=8)
    report = randomization_check(gimefive, images, "gradcam")
    assert report["mean_rank_correlation"] < 0.5 and report["passed"]


def test_region_shares_and_summary():
    maps = np.zeros((3, 20, 20), np.float32)
    maps[0, :9] = 1      # upper only
    maps[1, 13:] = 1     # lower only
    maps[2] = 1          # uniform: 45% / 20% / 35%
    shares = region_shares(maps)
    np.testing.assert_allclose(shares, [[1, 0, 0], [0, 0, 1], [0.45, 0.2, 0.35]], atol=1e-6)
    rows = summarize_regions(maps, [0, 0, 3])
    assert rows[0]["images"] == 2 and rows[0]["upper"] == pytest.approx(0.5)
    assert rows[3]["lower"] == pytest.approx(0.35) and rows[1]["images"] == 0




def test_maps_and_activations_write_pictures(tmp_path, model_path, capsys):
    for i in range(3):
        write_image(tmp_path / "in" / f"{i}.png", (64, 64, 3), seed=i)
    write_corrupt_files(tmp_path / "in" / "bad")
    assert explain_main(["maps", str(tmp_path / "in"), "--model", model_path, "--out",
                         str(tmp_path / "maps"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3 and all((tmp_path / "maps").glob("*_gradcam.png"))
    assert len(list((tmp_path / "maps").glob("gallery_*.png"))) >= 1
    assert explain_main(["activations", str(tmp_path / "in" / "0.png"), "--model", model_path,
                         "--out", str(tmp_path / "act"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["layers"] == [f"stage{i}_conv" for i in range(1, 6)]
    assert len(result["files"]) == 5
    # an output folder with files in it is never reused
    assert run_cli(explain_main, ["maps", str(tmp_path / "in"), "--model", model_path,
                                  "--out", str(tmp_path / "maps")]) == 2


def test_metrics_json_and_regions(tmp_path, model_path, capsys):
    make_folders_dataset(tmp_path / "d", per_class=2, split_dirs=None)
    assert explain_main(["metrics", "--data", str(tmp_path / "d"), "--model", model_path,
                         "--methods", "gradcam,saliency", "--steps", "4", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert set(results) == {"gradcam", "saliency", "random"}
    for values in results.values():
        assert set(values) >= {"deletion_auc", "insertion_auc", "average_drop",
                               "increase_in_confidence"}
    assert explain_main(["regions", "--data", str(tmp_path / "d"), "--model", model_path,
                         "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "regions.csv").read_text().startswith("emotion,images,upper")
    assert (tmp_path / "r" / "regions.png").exists()
    assert run_cli(explain_main, ["metrics", "--data", str(tmp_path / "d"), "--model",
                                  model_path, "--methods", "occlusion"]) == 2
    assert "unknown method(s) occlusion" in capsys.readouterr().err
