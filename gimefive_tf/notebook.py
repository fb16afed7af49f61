"""What the notebooks share, so that each stays a page of package calls: quick mode, where the
shared datasets are, a scratch folder, built-in pictures and a clip, and pictures shown as figures.

Quick mode (`GIMEFIVE_QUICK=1`, what CI sets) shrinks every notebook's data so the whole set runs
in minutes on two cores; `sized(full, quick)` is how a notebook says "this much, or this little".

Imported in a Jupyter kernel, this module teaches it to show a returned matplotlib Figure as a
PNG: the package's plotting functions return figures without going through pyplot, so no
`%matplotlib` magic has registered that. Nothing happens outside IPython.
"""

import os
import pathlib
import tempfile

import numpy as np

from gimefive_tf.errors import GiMeFiveError

QUICK_VARIABLE = "GIMEFIVE_QUICK"
REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
FIGURE_DPI = 72  # committed notebooks stay small; figures keep their inch sizes


def show_figures_inline():
    """In an IPython kernel, display matplotlib Figures as PNGs (at FIGURE_DPI)."""
    import sys

    if "IPython" not in sys.modules:
        return
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    from IPython.core.pylabtools import print_figure
    from matplotlib.figure import Figure

    shell.display_formatter.formatters["image/png"].for_type(
        Figure, lambda figure: print_figure(figure, "png", dpi=FIGURE_DPI))


def quick():
    """True when GIMEFIVE_QUICK is set to anything but 0/false/no."""
    return os.environ.get(QUICK_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def sized(full, quick_value):
    """`quick_value` in quick mode, `full` otherwise."""
    return quick_value if quick() else full


def datasets_dir():
    """GIMEFIVE_DATA, else the checkout's ../shared/datasets; None when neither exists (the same
    rule as the data tests)."""
    for candidate in (os.environ.get("GIMEFIVE_DATA"), REPOSITORY.parent / "shared" / "datasets"):
        if candidate and pathlib.Path(candidate).is_dir():
            return pathlib.Path(candidate)
    return None


def photos_dir():
    """GIMEFIVE_PHOTOS, else the checkout's ../shared/photos (real photographs with faces.csv);
    None when neither exists."""
    for candidate in (os.environ.get("GIMEFIVE_PHOTOS"), REPOSITORY.parent / "shared" / "photos"):
        if candidate and (pathlib.Path(candidate) / "faces.csv").is_file():
            return pathlib.Path(candidate)
    return None


def dataset(name):
    """The folder of one shared dataset ("RAF-DB", "FER2013"), or a GiMeFiveError saying how to
    point at it."""
    root = datasets_dir()
    if root is None or not (root / name).is_dir():
        raise GiMeFiveError(f"dataset {name} not found: set GIMEFIVE_DATA to the folder holding "
                            f"{name}/, or use a folder of your own")
    return root / name


def workspace(name):
    """A new, empty scratch folder for one notebook run, removed when the kernel exits:
    nothing of the user's is touched and nothing is left behind."""
    import atexit
    import shutil

    folder = pathlib.Path(tempfile.mkdtemp(prefix=f"gimefive-{name}-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def demo_photos():
    """Pictures that ship with scikit-image: {name: RGB array}. The astronaut has a face; the
    camera man's is small and turned; the cat has none, and the pipeline says so."""
    from skimage import data

    return {"astronaut": data.astronaut(), "camera": np.repeat(data.camera()[..., None], 3, -1),
            "chelsea": data.chelsea()}


def show(images, titles=(), columns=6, side=2.0):
    """Pictures (RGB arrays or image files) in a grid, as a returned Figure."""
    from matplotlib.figure import Figure

    from gimefive_tf.pictures import read_picture

    images = [read_picture(i) if isinstance(i, (str, pathlib.Path)) else np.asarray(i)
              for i in images]
    titles = list(titles) + [""] * (len(images) - len(titles))
    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    figure = Figure(figsize=(side * columns, side * rows + 0.3))
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for axis in axes:
        axis.axis("off")
    for axis, image, title in zip(axes, images, titles):
        axis.imshow(image)
        axis.set_title(title, fontsize=8)
    figure.tight_layout()
    return figure


def table(rows, index=None):
    """A pandas DataFrame of rows (dicts), of a .csv file, or of a .json file holding a list of
    rows (an export's report.json): what commands wrote, made readable."""
    import json

    import pandas as pd

    if isinstance(rows, (str, pathlib.Path)):
        path = pathlib.Path(rows)
        if path.suffix == ".csv":
            frame = pd.read_csv(path)
            return frame.set_index(index) if index else frame
        rows = json.loads(path.read_text())
    frame = pd.DataFrame(list(rows))
    return frame.set_index(index) if index else frame


show_figures_inline()
