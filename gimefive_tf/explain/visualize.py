"""Pictures of explanations: heatmap overlays, per-emotion galleries and feature-map grids."""

import numpy as np

from gimefive_tf.labels import EMOTIONS


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
    plt = _pyplot()
    predicted = int(np.argmax(probabilities))
    figure, axes = plt.subplots(1, 3, figsize=(9, 3), gridspec_kw={"width_ratios": [1, 1, 1.3]})
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
    figure.savefig(path, dpi=100)
    plt.close(figure)


def save_gallery(path, images, heatmaps, title, alpha=0.4):
    """The paper's Figure 4 layout: columns of faces, rows original / heatmap / overlay."""
    plt = _pyplot()
    count = len(images)
    figure, axes = plt.subplots(3, count, figsize=(max(1.6 * count, 3.5), 5), squeeze=False)
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
    figure.savefig(path, dpi=100)
    plt.close(figure)


def save_activation_grid(path, activations, title, max_channels=32):
    """The first channels of one feature map (h, w, C) as a grid, like the paper's conv figures."""
    plt = _pyplot()
    channels = min(max_channels, activations.shape[-1])
    columns = 8
    rows = -(-channels // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.1 + 0.4),
                                squeeze=False)
    for index, axis in enumerate(axes.ravel()):
        axis.axis("off")
        if index < channels:
            axis.imshow(activations[..., index], cmap="viridis")
    figure.suptitle(f"{title} ({activations.shape[0]}x{activations.shape[1]}, "
                    f"{channels} of {activations.shape[-1]} channels)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
