"""Model loading: the one place a `.keras` file (or the shipped model) becomes a keras.Model."""

import pathlib
import zipfile

from gimefive_tf.errors import GiMeFiveError, first_line
from gimefive_tf.labels import EMOTIONS

PRETRAINED_DIR = pathlib.Path(__file__).resolve().parent / "pretrained"
# Shipped models by name (`--model NAME` and load_model(NAME) everywhere): what each was trained
# on and its accuracy on its validation split (the model cards in pretrained/ have the rest).
SHIPPED = {
    "rafdb": {"file": "gimefive_rafdb.keras", "data": "RAF-DB", "val_accuracy": 0.8655,
              "card": "MODEL_CARD.md"},
    "fer2013": {"file": "gimefive_fer2013.keras", "data": "FER2013", "val_accuracy": 0.7001,
                "card": "MODEL_CARD_FER2013.md"},
}
DEFAULT_MODEL = "rafdb"
SHIPPED_MODELS = {name: PRETRAINED_DIR / entry["file"] for name, entry in SHIPPED.items()}
PRETRAINED_MODEL = SHIPPED_MODELS[DEFAULT_MODEL]


def shipped_entry(model):
    """SHIPPED's entry of `model` (None: the default model, or a shipped model's name); None
    for any other model (a .keras path, a keras.Model)."""
    name = DEFAULT_MODEL if model is None else model
    return SHIPPED.get(name) if isinstance(name, str) else None


def shipped_models():
    """Rows describing the shipped models that are installed (name, file, data, accuracy)."""
    rows = []
    for name, entry in SHIPPED.items():
        path = SHIPPED_MODELS[name]
        if path.is_file():
            rows.append({"name": name, "default": name == DEFAULT_MODEL, "file": str(path),
                         "size_mb": round(path.stat().st_size / 1e6, 1),
                         "data": entry["data"], "val_accuracy": entry["val_accuracy"],
                         "card": str(PRETRAINED_DIR / entry["card"])})
    return rows


def load_model(path=None):
    """Load a `.keras` model (a path, or a shipped model's name: "rafdb", "fer2013") with
    safe_mode=True; the default shipped model (RAF-DB) when path is None."""
    import keras

    import gimefive_tf.layers  # noqa: F401  (registers the custom layers)

    path = model_file(path)
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except (ValueError, OSError, KeyError, TypeError) as error:
        raise GiMeFiveError(f"cannot load {path} as a Keras model: "
                            f"{first_line(error)}") from None
    check_contract(model, path)
    return model


def model_path(path=None):
    """The file `path` names: a shipped model's name becomes its file, None the default one.
    Not checked (see model_file)."""
    if isinstance(path, str) and path in SHIPPED_MODELS:
        return SHIPPED_MODELS[path]
    return pathlib.Path(path).expanduser() if path else PRETRAINED_MODEL


def model_file(path=None):
    """The `.keras` file `path` names (the shipped one for None), checked before anything is
    loaded or written: it exists, is a file, and is a zip archive as .keras files are."""
    path = model_path(path)
    if not path.is_file():
        if path in SHIPPED_MODELS.values():
            raise GiMeFiveError(f"the shipped model {path.name} is not installed; pass "
                                "--model PATH.keras (for example a run's best.keras)")
        if path.is_dir():
            raise GiMeFiveError(f"model {path} is a folder; pass a .keras file")
        raise GiMeFiveError(f"model {path} does not exist")
    if path.suffix != ".keras":
        raise GiMeFiveError(f"model {path} is not a .keras file")
    if not zipfile.is_zipfile(path):  # Keras would say "File not found" for a file it sees
        raise GiMeFiveError(f"model {path} is not a Keras model (a .keras file is a zip "
                            "archive; this one is not)")
    return path


def check_contract(model, name="the model"):
    """What every command relies on, checked at load, never guessed: one input of square RGB
    pixels and one output per emotion (in labels.EMOTIONS order)."""
    inputs, outputs = model.inputs or [], model.outputs or []
    if len(inputs) != 1 or len(outputs) != 1:
        raise GiMeFiveError(f"{name} has {len(inputs)} inputs and {len(outputs)} outputs; a "
                            "GiMeFive model has one of each (pixels in, six scores out)")
    shape, classes = tuple(model.input_shape[1:]), model.output_shape[-1]
    if len(shape) != 3 or shape[2] != 3 or shape[0] is None or shape[0] != shape[1]:
        raise GiMeFiveError(f"{name} takes input of shape {shape}; a GiMeFive model takes "
                            "square RGB pixels, e.g. (64, 64, 3)")
    if classes != len(EMOTIONS):
        raise GiMeFiveError(f"{name} gives {classes} outputs per image; a GiMeFive model gives "
                            f"one per emotion ({len(EMOTIONS)}: {', '.join(EMOTIONS)})")
