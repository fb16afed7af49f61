"""TFLite model metadata (labels, input normalization, name, version, licence) in the format
MediaPipe Tasks' ImageClassifier reads on Android, iOS and the web, written with mediapipe's own
metadata writers.

mediapipe's pure-Python wheels lack one compiled helper the writers import (the minimum
metadata parser version of a buffer, `_pywrap_metadata_version`); it is provided here for the
only metadata this project writes (an image input with normalization options and a labelled
classification output), whose minimum parser version is 1.0.0 (mediapipe's
metadata_version.cc: every newer feature it counts is absent).
"""

import gc
import sys
import types

from gimefive_tf.errors import GiMeFiveError

MINIMUM_PARSER_VERSION = "1.0.0"
NEEDS_MEDIAPIPE = ("the on-device bundle's model metadata is written with mediapipe's metadata "
                   "writers: pip install --no-deps -r requirements-nodeps.txt")
_HELPER = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"


def _writers():
    """mediapipe's metadata_writer and metadata_info modules."""
    if _HELPER not in sys.modules:
        try:
            __import__(_HELPER)
        except ImportError:
            helper = types.ModuleType(_HELPER)
            helper.GetMinimumMetadataParserVersion = lambda buffer: MINIMUM_PARSER_VERSION
            parts = _HELPER.split(".")
            for end in range(3, len(parts)):
                sys.modules.setdefault(".".join(parts[:end]), types.ModuleType(
                    ".".join(parts[:end])))
            sys.modules[_HELPER] = helper
    try:
        from mediapipe.tasks.python.metadata.metadata_writers import (metadata_info,
                                                                      metadata_writer)
    except ImportError:
        raise GiMeFiveError(NEEDS_MEDIAPIPE) from None
    return metadata_writer, metadata_info


def with_classifier_metadata(model_bytes, labels, name, version, description, author,
                             licence, extra_outputs=()):
    """`model_bytes` (a .tflite taking uint8 RGB pixels) with metadata: the image input (no
    normalization: the model normalizes inside), the first output a classification head with
    `labels`, then one feature output per (name, description) of `extra_outputs`."""
    metadata_writer, metadata_info = _writers()
    writer = metadata_writer.MetadataWriter.create(bytearray(model_bytes))
    # the generic writer sets only name and description itself; the rest of the general
    # metadata goes in the same object it writes
    writer._general_md = metadata_info.GeneralMd(name=name, version=str(version),
                                                 description=description, author=author,
                                                 licenses=licence)
    writer.add_image_input(norm_mean=[0.0], norm_std=[1.0], name="pixels",
                           description="a face crop, uint8 RGB, framed and lit as the "
                                       "pipeline's specification says")
    writer.add_classification_output(metadata_writer.Labels().add(list(labels)),
                                     name="probabilities",
                                     description="the probability of each emotion")
    for output, about in extra_outputs:
        writer.add_feature_output(name=output, description=about)
    buffer, _ = writer.populate()
    # the writer removes its temporary folder when collected; collected here, while the
    # interpreter is whole (at exit its cleanup raises, on stderr)
    del writer
    gc.collect()
    return bytes(buffer)
