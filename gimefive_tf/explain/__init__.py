"""Explanations: the Grad-CAM family, CAM, saliency, activation grids, overlays and metrics."""

from gimefive_tf.explain.base import CamExplainer, Explainer, default_layer, feature_maps
from gimefive_tf.explain.methods import METHODS, heatmaps, make_explainer
