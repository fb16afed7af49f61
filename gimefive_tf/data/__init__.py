"""Datasets: readers for every public FER layout, the tf.data pipeline, splits and augmentation."""

from gimefive_tf.data.pipeline import (decode_image, decoded_images, load_arrays, make_dataset,
                                       resize_pixels, training_stream)
from gimefive_tf.data.readers import LAYOUTS, LabeledImages, detect_layout, read_dataset
from gimefive_tf.data.split import class_weights, stratified_split
