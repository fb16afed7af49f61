"""Faithfulness of explanations, measured by perturbing images in the order a heatmap ranks pixels.

- deletion AUC (lower is better): remove the most important pixels first (replace them with the
  perturbation's baseline) and integrate the target's probability over the removed fraction;
- insertion AUC (higher is better): start from the baseline and put the pixels back, most
  important first;
- average drop % and increase-in-confidence % (Chattopadhay et al.): the image masked by the
  heatmap itself, against the original image.
Each is reported next to the same numbers for random heatmaps. The sanity check (Adebayo et al.)
compares maps of the trained model with maps of a re-initialized copy.

The perturbation is an argument: any function images -> baseline images (blur by default).
"""

import numpy as np

from gimefive_tf.explain.methods import make_explainer


def blur(sigma=5.0):
    """Perturbation: a Gaussian-blurred copy of each image (removes detail, keeps the colours)."""
    import cv2

    def perturb(images):
        return np.stack([cv2.GaussianBlur(np.asarray(image, np.float32), (0, 0), sigma)
                         for image in images])

    perturb.__name__ = f"blur(sigma={sigma})"
    return perturb


def constant(value=0.0):
    """Perturbation: every pixel set to `value` (0 is black)."""

    def perturb(images):
        return np.full_like(np.asarray(images, np.float32), value)

    perturb.__name__ = f"constant({value})"
    return perturb


def target_probabilities(predict, images, targets):
    probabilities = predict(np.asarray(images, np.float32))
    return probabilities[np.arange(len(targets)), targets]


def deletion_insertion(predict, images, maps, targets, perturbation=None, steps=16):
    """(deletion AUC, insertion AUC) per image, pixels taken in the heatmap's order."""
    perturbation = perturbation or blur()
    images = np.asarray(images, np.float32)
    baseline = perturbation(images)
    count, height, width = maps.shape
    order = np.argsort(-maps.reshape(count, -1), axis=1, kind="stable")
    fractions = np.linspace(0, 1, steps + 1)
    deletion, insertion = np.zeros((count, steps + 1)), np.zeros((count, steps + 1))
    for k, fraction in enumerate(fractions):
        chosen = np.zeros((count, height * width), bool)
        taken = int(round(fraction * height * width))
        np.put_along_axis(chosen, order[:, :taken], True, axis=1)
        chosen = chosen.reshape(count, height, width, 1)
        deletion[:, k] = target_probabilities(predict, np.where(chosen, baseline, images), targets)
        insertion[:, k] = target_probabilities(predict, np.where(chosen, images, baseline),
                                               targets)
    return np.trapezoid(deletion, fractions, axis=1), np.trapezoid(insertion, fractions, axis=1)


def drop_and_increase(predict, images, maps, targets):
    """(average drop %, increase in confidence %) of the heatmap-masked images."""
    original = target_probabilities(predict, images, targets)
    masked = target_probabilities(predict, np.asarray(images, np.float32) * maps[..., None],
                                  targets)
    drop = np.maximum(0, original - masked) / np.maximum(original, 1e-12)
    return float(100 * drop.mean()), float(100 * (masked > original).mean())


def random_maps(count, size, grid, seed=0):
    """Random heatmaps as smooth as a CAM: uniform noise on a grid x grid lattice, upsampled.

    Pixel-level noise would be a degenerate baseline: inserting random single pixels restores a
    blurred face almost at once, which no real explanation at 4x4 resolution can match.
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    coarse = rng.uniform(size=(count, grid, grid, 1)).astype(np.float32)
    return tf.image.resize(coarse, size, method="bilinear").numpy()[..., 0]


def faithfulness(model, images, methods=("gradcam",), perturbation=None, steps=16, seed=0,
                 batch_size=64, random_grid=None, layer=None):
    """{method: {deletion_auc, insertion_auc, average_drop, increase_in_confidence}}, plus
    "random" for random heatmaps, each for the predicted class. layer: the feature map the CAM
    methods explain (default: each method's own). The random maps are smooth on the finest grid
    the CAM methods explain (the stronger baseline: finer random maps delete faster)."""
    from gimefive_tf.explain.base import CamExplainer, default_layer
    from gimefive_tf.explain.methods import METHODS
    from gimefive_tf.inference import Predictor

    images = np.asarray(images, np.float32)
    predict = Predictor(model, batch_size=batch_size)
    targets = predict(images).argmax(1)
    explainers = {name: make_explainer(
        model, name, layer if issubclass(METHODS[name], CamExplainer) else None,
        batch_size=batch_size) for name in methods}
    candidates = {name: explainer(images, targets)[0] for name, explainer in explainers.items()}
    layers = [e.layer for e in explainers.values() if isinstance(e, CamExplainer)] or \
        [default_layer(model)]
    grid = random_grid or max(model.get_layer(name).output.shape[1] for name in layers)
    candidates["random"] = random_maps(len(images), images.shape[1:3], grid, seed)
    results = {}
    for name, maps in candidates.items():
        deletion, insertion = deletion_insertion(predict, images, maps, targets, perturbation,
                                                 steps)
        drop, increase = drop_and_increase(predict, images, maps, targets)
        results[name] = {"deletion_auc": float(deletion.mean()),
                         "insertion_auc": float(insertion.mean()),
                         "average_drop": drop, "increase_in_confidence": increase,
                         "images": int(len(images))}
    return results


def randomization_check(model, images, method="gradcam", threshold=0.5, seed=0):
    """Maps of the model vs the same architecture re-initialized: mean Spearman rank correlation.

    A faithful method's maps must change when the weights are destroyed; `passed` is True when
    the mean correlation is below `threshold`.
    """
    import keras
    from scipy.stats import spearmanr

    images = np.asarray(images, np.float32)
    trained, targets = make_explainer(model, method)(images)
    keras.utils.set_random_seed(seed)
    randomized = keras.models.clone_model(model)  # fresh initial weights, nothing copied
    randomized_maps, _ = make_explainer(randomized, method)(images, targets)
    correlations = []
    for a, b in zip(trained, randomized_maps):
        if np.ptp(a) == 0 or np.ptp(b) == 0:  # a constant map has no ranking: nothing shared
            correlations.append(0.0)
            continue
        correlations.append(float(spearmanr(a.ravel(), b.ravel()).statistic))
    mean = float(np.mean(correlations))
    return {"method": method, "mean_rank_correlation": mean, "threshold": threshold,
            "passed": bool(mean < threshold), "images": int(len(images))}
