"""Model loading: the one place a `.keras` file (or the shipped model) becomes a keras.Model."""

import pathlib

from gimefive_tf.errors import GiMeFiveError

PRETRAINED_DIR = pathlib.Path(__file__).resolve().parent / "pretrained"
PRETRAINED_MODEL = PRETRAINED_DIR / "gimefive_rafdb.keras"


def load_model(path=None):
    """Load a zoo model from `path` with safe_mode=True; the shipped model when path is None."""
    import keras

    import gimefive_tf.layers  # noqa: F401  (registers the custom layers)

    path = pathlib.Path(path).expanduser() if path else PRETRAINED_MODEL
    if not path.is_file():
        if path == PRETRAINED_MODEL:
            raise GiMeFiveError("no shipped model is installed yet; pass --model PATH.keras "
                                "(for example a run's best.keras)")
        raise GiMeFiveError(f"model {path} does not exist")
    if path.suffix != ".keras":
        raise GiMeFiveError(f"model {path} is not a .keras file")
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except (ValueError, OSError, KeyError) as error:
        raise GiMeFiveError(f"cannot load {path} as a Keras model: {error}") from None
