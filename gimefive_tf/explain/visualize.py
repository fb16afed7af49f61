"""Pictures of explanations: heatmap overlays, per-emotion galleries and feature-map grids."""

import numpy as np

from gimefive_tf.labels import EMOTIONS


def colorize(heatmap):
    """A [0, 1] heatmap as RGB uint8 through the jet colormap."""
    from matplotlib import colormaps

    return (colormaps["jet"](np.clip(heatmap, 0, 1))[..., :3] * 255).astype(np.uint8)


def blend(image, heatmap, alpha=0.4):
    """The jet-coloured heatmap laid over the RGB image with weight `alpha`."""
    image = np.asarray(image, np.float32)
    return np.clip((1 - alpha) * image + alpha * colorize(heatmap), 0, 255).astype(np.uint8)


def save_overlay(path, image, heatmap, probabilities, title="", alpha=0.4, method="gradcam"):
    """One PNG: face, heatmap overlay, and the six scores with the prediction highlighted."""
    from matplotlib.figure import Figure

    from gimefive_tf.outputs import finish_figure

    predicted = int(np.argmax(probabilities))
    figure = Figure(figsize=(9, 3))
    axes = figure.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.3]})
    axes[0].imshow(np.asarray(image, np.uint8))
    axes[0].set_title(title or "input", fontsize=8)
    axes[1].imshow(blend(image, heatmap, alpha))
    axes[1].set_title(f"{method}: {EMOTIONS[predicted]}", fontsize=9)
    for axis in axes[:2]:
        axis.axis("off")
    order = np.arange(len(EMOTIONS))[::-1]
    axes[2].barh([EMOTIONS[i] for i in order], np.asarray(probabilities)[order],
                 color=["tab:red" if i == predicted else "tab:gray" for i in order])
    axes[2].set_xlim(0, 1)
    axes[2].set_xlabel("probability")
    figure.tight_layout()
    return finish_figure(figure, path, dpi=100)


def gallery(images, heatmaps, title="", path=None, alpha=0.4):
    """The paper's Figure 4 layout: columns of faces, rows original / heatmap / overlay."""
    from matplotlib.figure import Figure

    from gimefive_tf.outputs import finish_figure

    count = len(images)
    figure = Figure(figsize=(max(1.6 * count, 3.5), 5))
    axes = figure.subplots(3, count, squeeze=False)
    for column in range(count):
        rows = (np.asarray(images[column], np.uint8), colorize(heatmaps[column]),
                blend(images[column], heatmaps[column], alpha))
        for row, picture in enumerate(rows):
            axes[row, column].imshow(picture)
            axes[row, column].axis("off")
    for row, label in enumerate(("original", "heatmap", "overlay")):
        axes[row, 0].set_title(label, fontsize=8, loc="left")
    figure.suptitle(title)
    figure.tight_layout()
    return finish_figure(figure, path, dpi=100)


def activation_grid(activations, title="", path=None, max_channels=32):
    """The first channels of one feature map (h, w, C) as a grid, like the paper's conv figures."""
    from matplotlib.figure import Figure

    from gimefive_tf.outputs import finish_figure

    channels = min(max_channels, activations.shape[-1])
    columns = 8
    rows = -(-channels // columns)
    figure = Figure(figsize=(columns * 1.1, rows * 1.1 + 0.4))
    axes = figure.subplots(rows, columns, squeeze=False)
    for index, axis in enumerate(axes.ravel()):
        axis.axis("off")
        if index < channels:
            axis.imshow(activations[..., index], cmap="viridis")
    figure.suptitle(f"{title} ({activations.shape[0]}x{activations.shape[1]}, "
                    f"{channels} of {activations.shape[-1]} channels)", fontsize=9)
    figure.tight_layout()
    return finish_figure(figure, path, dpi=90)


def activation_stages(maps, index=0, channels=8, title=""):
    """One face's feature maps at every conv stage ({layer: (N, h, w, C)}): a row of its first
    channels per stage, conv1 to conv5 top to bottom, as the paper's activation figures."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(channels * 1.1, len(maps) * 1.2 + 0.4))
    axes = figure.subplots(len(maps), channels, squeeze=False)
    for row, (layer, activations) in enumerate(maps.items()):
        for column, axis in enumerate(axes[row]):
            axis.set_xticks([])
            axis.set_yticks([])
            if column < activations.shape[-1]:
                axis.imshow(activations[index, ..., column], cmap="viridis")
        axes[row, 0].set_ylabel(f"{layer}\n{activations.shape[1]}x{activations.shape[2]}",
                                fontsize=8)
    figure.suptitle(title or f"feature maps, first {channels} channels per stage", fontsize=9)
    figure.tight_layout()
    return figure
