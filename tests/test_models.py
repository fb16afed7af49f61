import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import gimefive_tf
from gimefive_tf.cli import run_cli
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.models import GiMeFiveConfig, available, create_model, feature_layer_names
from gimefive_tf.models.__main__ import main as zoo_main
from gimefive_tf.models.summary import count_params
from gimefive_tf.paper import REPORTED_PARAMS

# The paper's Table 2, trainable parameters: the presets must hit these exactly.
TABLE2 = REPORTED_PARAMS


def trainable(model):
    return count_params(model.trainable_weights)


def test_registry_lists_exactly_the_table2_presets():
    assert available() == tuple(TABLE2)


@pytest.mark.parametrize("name", available())
def test_every_preset_builds_with_its_table2_count(name):
    model = create_model(name)
    assert trainable(model) == TABLE2[name]
    assert model.input_shape == (None, 64, 64, 3)
    assert model.output_shape == (None, 6)
    logits = model.predict(np.full((2, 64, 64, 3), 128, "float32"), verbose=0)
    assert logits.shape == (2, 6) and np.all(np.isfinite(logits))


@pytest.mark.parametrize("overrides, preset", [
    ({"conv_depth": 4}, "baseline"),
    ({"conv_depth": 6}, "gimefive_deep"),
    ({"batch_norm": False}, "gimefive_nobn"),
    ({"se": True}, "gimefive_se"),
])
def test_knobs_reproduce_the_paper_variants(overrides, preset):
    assert trainable(create_model("gimefive", **overrides)) == TABLE2[preset]


def test_default_model_is_the_papers_best():
    model = gimefive_tf.create_model()
    assert model.name == "gimefive" and trainable(model) == 10_478_086


def test_stage_maps_have_stable_names_and_the_last_is_4x4_before_pooling():
    model = create_model("gimefive")
    assert feature_layer_names(model) == [f"stage{i}_conv" for i in range(1, 6)]
    assert model.get_layer("stage5_conv").output.shape == (None, 4, 4, 1024)
    assert model.get_layer("stage5_pool").output.shape == (None, 2, 2, 1024)
    names = [layer.name for layer in model.layers]
    assert names[:2] == ["pixels", "preprocess"]
    assert names[-5:] == ["global_pool", "fc1", "fc1_dropout", "fc2", "logits"]
    # The reference has no dropout after the last stage: global pooling follows it directly.
    assert "stage4_dropout" in names and "stage5_dropout" not in names


def test_feature_maps_of_other_presets():
    assert feature_layer_names(create_model("gimefive_res"))[-1] == "stage5_conv"
    assert create_model("gimefive_se").get_layer("stage1_se") is not None
    resnet = create_model("resnet18")
    assert feature_layer_names(resnet)[-1] == "stage4_block2"


@pytest.mark.parametrize("fc_depth, dense", [(1, []), (2, [2048]), (3, [2048, 1024])])
def test_fc_depth_sets_hidden_widths(fc_depth, dense):
    model = create_model("gimefive", fc_depth=fc_depth)
    widths = [layer.units for layer in model.layers if layer.name.startswith("fc")
              and hasattr(layer, "units")]
    assert widths == dense


@pytest.mark.parametrize("activation", ["tanh", "elu", "gelu"])
def test_activation_knob(activation):
    model = create_model("gimefive", activation=activation)
    assert trainable(model) == TABLE2["gimefive"]
    assert {model.get_layer(f"stage{i}_conv").activation for i in range(1, 6)} == {activation}
    assert model.get_layer("fc1").get_config()["activation"] == activation


def test_pooling_knob():
    model = create_model("gimefive", pooling="avg")
    assert trainable(model) == TABLE2["gimefive"]
    pools = [model.get_layer(f"stage{i}_pool") for i in range(1, 6)]
    assert all(isinstance(p, keras.layers.AveragePooling2D) for p in pools)
    assert model.get_layer("stage5_pool").output.shape == (None, 2, 2, 1024)


def test_input_size_and_classes_are_knobs():
    model = create_model("gimefive", input_size=96, num_classes=7)
    assert model.input_shape == (None, 96, 96, 3) and model.output_shape == (None, 7)
    assert create_model("resnet18", num_classes=3).output_shape == (None, 3)


@pytest.mark.parametrize("overrides, field, allowed", [
    ({"conv_depth": 9}, "conv_depth", "1, 2, 3, 4, 5, 6"),
    ({"activation": "nope"}, "activation", "'relu', 'tanh', 'elu', 'gelu'"),
    ({"dropout": -0.1}, "dropout", "[0, 1)"),
    ({"head_dropout": 1.0}, "head_dropout", "[0, 1)"),
    ({"fc_depth": 4}, "fc_depth", "1, 2, 3"),
    ({"pooling": "min"}, "pooling", "'max', 'avg'"),
    ({"input_size": 16, "conv_depth": 5}, "input_size", ">= 32"),
    ({"batch_norm": "yes"}, "batch_norm", "True, False"),
])
def test_bad_configs_name_the_field_and_the_allowed_values(overrides, field, allowed):
    with pytest.raises(GiMeFiveError) as info:
        create_model("gimefive", **overrides)
    message = str(info.value)
    assert message.startswith(f"{field}=") and allowed in message


def test_unknown_option_and_unknown_preset_are_clear_errors():
    with pytest.raises(GiMeFiveError, match="unknown model option.*colour.*known options"):
        create_model("gimefive", colour="blue")
    with pytest.raises(GiMeFiveError, match="has no option.*conv_depth"):
        create_model("resnet18", conv_depth=4)
    with pytest.raises(GiMeFiveError, match="unknown model 'alexnet'; choose one of baseline"):
        create_model("alexnet")


def test_config_is_a_value():
    config = GiMeFiveConfig()
    assert config.stage_widths == (64, 128, 256, 512, 1024)
    assert config.dense_widths == (2048, 1024)
    assert config.replace(residual=True).stage_widths == (128, 256, 512, 1024, 2048)
    assert GiMeFiveConfig(**config.to_dict()) == config


def test_whole_model_keras_round_trip_under_safe_mode(tmp_path):
    model = create_model("gimefive_se")
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_array_equal(model.predict(x, verbose=0), reloaded.predict(x, verbose=0))
    assert [layer.name for layer in reloaded.layers] == [layer.name for layer in model.layers]


def test_zoo_json(capsys):
    assert zoo_main(["--json", "gimefive", "baseline"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["layers"], r["params"]) for r in rows] == [
        ("gimefive", 15, 10_478_086), ("baseline", 13, 2_606_086)]
    gimefive = rows[0]
    # 5 convs on 64..4 px maps plus the head: about 0.63 GFLOPs (multiply and add counted apart).
    assert 0.62 < gimefive["gflops"] < 0.64
    assert gimefive["size_mb"] == pytest.approx(10_478_086 * 4 / 1e6 + 0.03, abs=0.02)


def test_zoo_table_and_bad_name(capsys):
    assert zoo_main(["resnet18"]) == 0
    out = capsys.readouterr().out
    assert "trainable params" in out.splitlines()[0]
    assert "11,179,590" in out
    assert run_cli(zoo_main, ["alexnet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown model 'alexnet'")


def test_zoo_command_line_lists_every_preset():
    result = subprocess.run([sys.executable, "-m", "gimefive_tf.models", "--json"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {row["name"]: row["params"] for row in rows} == TABLE2
