"""A model's framing calibration, stored beside it as `<model>.framing.json`: per detector the
measured Framing and the best way to cut ("box", "eyes" or "landmarks"). `gimefive_tf.calibrate`
fits it."""

import dataclasses
import json
import pathlib

from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.faces.framing import Framing


def framing_path(model_path):
    """Where the calibration of the model at `model_path` lives: `<stem>.framing.json`."""
    model_path = pathlib.Path(model_path)
    return model_path.with_name(model_path.stem + ".framing.json")


def read_calibration(path):
    """{detector: {"framing": Framing, "default": "box" | "landmarks", ...}} from JSON."""
    try:
        stored = json.loads(pathlib.Path(path).read_text())
        return {name: {**entry, "framing": Framing(**{k: (tuple(map(tuple, v)) if k == "template"
                                                          and v else v)
                                                      for k, v in entry["framing"].items()})}
                for name, entry in stored["detectors"].items()}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise GiMeFiveError(f"{path} is not a framing calibration: {error}") from None


def write_calibration(path, calibration, about):
    """Store the calibration as JSON (with `about`: data, model, counts) at `path`."""
    entries = {name: {**entry, "framing": dataclasses.asdict(entry["framing"])}
               for name, entry in calibration.items()}
    from gimefive_tf.outputs import write_text

    write_text(path, json.dumps({**about, "detectors": entries}, indent=2) + "\n")


def find_calibration(model_path=None):
    """(path, calibration) for a model: beside it, else the shipped model's (which fits any
    model trained on aligned RAF-DB-like crops); (None, {}) when there is none."""
    from gimefive_tf.loading import PRETRAINED_MODEL

    for candidate in ([framing_path(model_path)] if model_path else []) + [
            framing_path(PRETRAINED_MODEL)]:
        if candidate.is_file():
            return candidate, read_calibration(candidate)
    return None, {}
