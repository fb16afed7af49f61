"""Where the model looks: heatmap mass on the upper, middle and lower face per predicted emotion.

The bands assume aligned face crops (the training faces are): upper = eyes and brows (top 45%),
middle = nose (45-65%), lower = mouth and chin (bottom 35%). Does the model look at the mouth for
happiness and at the brows for anger?
"""

import numpy as np

from gimefive_tf.labels import EMOTIONS

REGIONS = {"upper": (0.0, 0.45), "middle": (0.45, 0.65), "lower": (0.65, 1.0)}


def region_shares(maps):
    """(N, 3) share of each map's mass in the upper, middle and lower bands (rows sum to 1)."""
    maps = np.asarray(maps, np.float64)
    height = maps.shape[1]
    totals = maps.sum((1, 2))
    shares = []
    for low, high in REGIONS.values():
        rows = slice(int(round(low * height)), int(round(high * height)))
        shares.append(maps[:, rows].sum((1, 2)))
    shares = np.stack(shares, axis=1)
    return np.where(totals[:, None] > 0, shares / np.where(totals > 0, totals, 1)[:, None],
                    np.nan)


def summarize_regions(maps, predictions):
    """Rows per predicted emotion: images and mean share per region (what regions.csv holds)."""
    shares = region_shares(maps)
    rows = []
    for index, emotion in enumerate(EMOTIONS):
        members = (np.asarray(predictions) == index) & ~np.isnan(shares).any(1)
        means = shares[members].mean(0) if members.any() else np.full(len(REGIONS), np.nan)
        rows.append({"emotion": emotion, "images": int(members.sum()),
                     **{name: float(v) for name, v in zip(REGIONS, means)}})
    return rows


def plot_regions(rows, path=None, method="gradcam"):
    from matplotlib.figure import Figure

    from gimefive_tf.outputs import finish_figure

    figure = Figure(figsize=(8, 4))
    axis = figure.subplots()
    width = 0.25
    positions = np.arange(len(rows))
    for offset, name in enumerate(REGIONS):
        axis.bar(positions + (offset - 1) * width, [r[name] for r in rows], width, label=name)
    axis.set_xticks(positions, [f"{r['emotion']}\n(n={r['images']})" for r in rows])
    axis.set_ylabel(f"share of {method} mass")
    axis.set_ylim(0, 1)
    axis.legend(title="face region")
    figure.tight_layout()
    return finish_figure(figure, path, dpi=100)
