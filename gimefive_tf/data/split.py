"""Stratified, seeded train/validation splits and class weights for the imbalanced FER sets."""

import numpy as np

from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.labels import NUM_CLASSES


def stratified_split(table, fraction=0.1, seed=0):
    """(train, validation) tables; each class gives round(fraction * its count) to validation.

    The same (table, fraction, seed) always gives the same split, whatever the machine.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) \
            or not 0 < fraction < 1:
        raise GiMeFiveError(f"val_split={fraction!r} is not allowed; use a fraction in (0, 1)")
    rng = np.random.default_rng(seed)
    labels = table.labels
    validation = []
    for label in range(max(NUM_CLASSES, labels.max(initial=0) + 1)):
        members = np.flatnonzero(labels == label)
        take = int(round(fraction * len(members)))
        validation.extend(rng.permutation(members)[:take].tolist())
    is_validation = np.zeros(len(table), bool)
    is_validation[validation] = True
    if is_validation.all() or not is_validation.any():
        side = "validation" if not is_validation.any() else "training"
        raise GiMeFiveError(f"a validation split of {fraction} of {len(table)} images leaves the "
                            f"{side} side empty; choose another --val-split")
    return table.subset(~is_validation), table.subset(is_validation)


def class_weights(table, num_classes=NUM_CLASSES):
    """{class: total / (classes * count)} ("balanced"); classes absent from the table get 0."""
    counts = np.bincount(table.labels, minlength=num_classes).astype(float)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return {label: float(weight) for label, weight in enumerate(weights)}
