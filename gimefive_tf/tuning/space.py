"""Search spaces as data: a YAML mapping of hyperparameter name -> list of choices.

`tuning/table4.yaml` is the paper's Table 4; users write their own in the same format. Errors
name the file and the line.
"""

import pathlib

import yaml

from gimefive_tf.choices import ACTIVATIONS, POOLINGS
from gimefive_tf.errors import GiMeFiveError, yaml_problem

ORACLE_NAMES = ("grid", "random", "bayesian", "hyperband")  # KerasTuner's search strategies

# name -> (type of each choice, allowed values or None for any of that type)
HYPERPARAMETERS = {
    "learning_rate": (float, None),
    "batch_size": (int, None),
    "dropout": (float, None),
    "conv_depth": (int, (1, 2, 3, 4, 5, 6)),
    "fc_depth": (int, (1, 2, 3)),
    "batch_norm": (bool, (True, False)),
    "pooling": (str, POOLINGS),
    "optimizer": (str, ("adam", "sgd", "adamw")),
    "activation": (str, ACTIVATIONS),
    "epochs": (int, None),
    "early_stopping": (bool, (True, False)),
    "patience": (int, None),
}
SPACES_DIR = pathlib.Path(__file__).resolve().parents[2] / "tuning"


def load_space(path):
    """{name: [choices]} from a YAML file, validated; GiMeFiveError names the file and line."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise GiMeFiveError(f"search space {path} does not exist")
    text = path.read_text()
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as error:
        raise GiMeFiveError(f"{path}: {yaml_problem(error)}") from None
    if root is None or not isinstance(root, yaml.MappingNode):
        raise GiMeFiveError(f"{path}: a search space is a mapping of name: [choices]")
    space = {}
    for key_node, value_node in root.value:
        where = f"{path}, line {key_node.start_mark.line + 1}"
        name = key_node.value
        if name not in HYPERPARAMETERS:
            raise GiMeFiveError(f"{where}: unknown hyperparameter {name!r}; known: "
                                f"{', '.join(HYPERPARAMETERS)}")
        values = yaml.safe_load(yaml.serialize(value_node))
        space[name] = check_choices(name, values, where)
    return space


def check_choices(name, values, where):
    """The validated list of choices for one hyperparameter."""
    kind, allowed = HYPERPARAMETERS[name]
    if not isinstance(values, list) or not values:
        raise GiMeFiveError(f"{where}: {name} needs a non-empty list of choices, got {values!r}")
    checked = []
    for value in values:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise GiMeFiveError(f"{where}: {name} choice {value!r} is not a {kind.__name__}")
        if allowed is not None and value not in allowed:
            raise GiMeFiveError(f"{where}: {name} choice {value!r} is not one of "
                                f"{', '.join(map(str, allowed))}")
        if kind in (int, float) and value <= 0 and name != "dropout":
            raise GiMeFiveError(f"{where}: {name} choice {value!r} must be positive")
        if name == "dropout" and not 0 <= value < 1:
            raise GiMeFiveError(f"{where}: dropout choice {value!r} must be in [0, 1)")
        checked.append(value)
    if len(set(checked)) != len(checked):
        raise GiMeFiveError(f"{where}: {name} lists a choice twice")
    return checked


def parse_fixed(items, space):
    """--fix key=value pins: {name: value}, each value checked like a choice."""
    fixed = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or name not in HYPERPARAMETERS:
            raise GiMeFiveError(f"--fix {item!r} must be NAME=VALUE with NAME one of "
                                f"{', '.join(HYPERPARAMETERS)}")
        fixed[name] = check_choices(name, [yaml.safe_load(text)], f"--fix {name}")[0]
    return fixed
