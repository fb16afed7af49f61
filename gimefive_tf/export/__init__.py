"""SavedModel for TF Serving and TFLite for phones, with a parity report: the library half of
`python -m gimefive_tf.export` (its command line is `export/__main__.py`); `export_model`
writes the whole export folder.

DIR/savedmodel/<name>/<version>/   TF Serving layout, signatures:
    serving_default  encoded images (JPEG/PNG/BMP/GIF/WebP bytes, any size, gray or color) [N]
                     string
                     -> probabilities [N, 6], label [N] string, label_id [N] int
    predict_pixels   uint8 RGB [N, 64, 64, 3] -> the same outputs
    explain          uint8 RGB [N, 64, 64, 3] -> the same outputs + heatmap [N, 64, 64] (the
                     default explanation: LayerCAM on stage4_conv) of the top class
    predict_mirrored, explain_mirrored
                     the same for faces cut from pictures: the face pipeline's decision, each
                     crop with its mirror image (`gimefive_tf.decision`), the heatmap of that
                     decision on the crop as given; what the server and `batch` run
DIR/tflite/<name>_{fp32,fp16,int8,cam}.tflite, DIR/tflite/labels.txt (fp32/fp16/int8: one
                   crop's probabilities; cam: the face pipeline's mirror-averaged decision and
                   its heatmap, one call per face)
DIR/mobile/        the on-device bundle (`export.bundle`): BlazeFace, one int8 model that decides
                   and explains (with MediaPipe-readable metadata), the pipeline's specification
DIR/web/           the offline web app (`export.webapp`): the bundle run in the browser by
                   LiteRT.js, installable, working offline
DIR/report.json    per artifact: size, top-1 agreement and max |probability diff| against the
                   Keras model on real faces, accuracy on --eval-data, single-image latency.
"""

import json
import pathlib
import time

import numpy as np

from gimefive_tf.decision import (IN_GRAPH_METHODS, cam, decide, explained_decision, finish_maps,
                                  probabilities, views)
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.labels import EMOTIONS
from gimefive_tf.litert import TFLiteModel  # noqa: F401 (the export's runner, re-exported)

FORMATS = ("savedmodel", "tflite", "tflite-fp16", "tflite-int8", "tflite-cam", "mobile",
           "web")
TFLITE_FILES = {"tflite": "fp32", "tflite-fp16": "fp16", "tflite-int8": "int8",
                "tflite-cam": "cam"}

NEEDS_CALIBRATION = ("tflite-int8 needs real faces to calibrate on: pass --calibration-data "
                     "PATH (e.g. ../shared/datasets/RAF-DB)")


# ------------------------------------------------------------------------------ graph parts

def _outputs(decided):
    """The signatures' outputs of a decision: probabilities, label id and label."""
    import tensorflow as tf

    label_id = tf.argmax(decided, axis=-1, output_type=tf.int32)
    label = tf.gather(tf.constant(list(EMOTIONS)), label_id)
    return {"probabilities": decided, "label": label, "label_id": label_id}


def explained_layer(model, method, layer=None):
    """The feature map `method` explains by default (the library's default explanation's)."""
    from gimefive_tf.explain.base import default_layer
    from gimefive_tf.explain.methods import METHODS

    if method not in IN_GRAPH_METHODS:
        raise GiMeFiveError(f"the export computes {' or '.join(IN_GRAPH_METHODS)} in its graph, "
                            f"not {method}")
    return layer or default_layer(model, METHODS[method].default_stage)


def cam_in_graph(model, pixels, method, layer, mirror=False):
    """(probabilities, heatmap): the decision (`gimefive_tf.decision`) and the explanation of
    its top class, with a GradientTape, normalized to [0, 1]."""
    import keras
    import tensorflow as tf

    feature_model = keras.Model(model.inputs, [model.get_layer(layer).output, model.outputs[0]])
    targets = -tf.ones(tf.shape(pixels)[:1], tf.int64)
    activations, gradients, decided, _ = explained_decision(
        feature_model, tf.cast(pixels, tf.float32), targets, mirror)
    return decided, finish_maps(cam(method, activations, gradients), pixels.shape[1:3])


def analytic_cam(model, pixels, method, layer, mirror=False):
    """`cam_in_graph` without a gradient engine, for TFLite: (probabilities, heatmap).

    A phone runtime has no gradient ops, so the backward pass from the predicted logit to the
    explained map is written out as forward ops, layer by layer, for what follows the map in
    GiMeFive: dense layers (their ReLU masks and transposed weights), global average pooling
    (spread evenly), dropout (identity), 2x2 max pooling (to the position that was the
    maximum) and a conv block (ReLU mask, batch norm's scale, a transposed convolution).
    """
    import keras
    import tensorflow as tf

    after = model.layers[[l.name for l in model.layers].index(layer) + 1:]
    if not after or not isinstance(after[-1], keras.layers.Dense) or \
            after[-1].activation is not keras.activations.linear or not all(
                _backward_known(l, l is after[-1]) for l in after):
        raise GiMeFiveError("tflite-cam needs a GiMeFive-style head (conv blocks, max pooling, "
                            "global average pooling, dense layers) after the explained layer")
    probe = keras.Model(model.inputs, [model.get_layer(layer).output] + [l.output for l in after])
    count = tf.shape(pixels)[0]
    outputs = probe(views(tf.cast(pixels, tf.float32), mirror), training=False)
    decided = probabilities(outputs[-1], count, mirror)
    outputs = [output[:count] for output in outputs]  # the crops as given are explained
    grad = tf.gather(tf.transpose(after[-1].kernel), tf.argmax(decided, axis=-1))
    for index in range(len(after) - 2, -1, -1):
        grad = _backward(after[index], outputs[index], outputs[index + 1], grad)
    return decided, finish_maps(cam(method, outputs[0], grad), pixels.shape[1:3])


def _backward_known(layer, last):
    """Whether _backward writes out this layer's backward pass exactly."""
    import keras

    from gimefive_tf.layers import ConvBlock

    if isinstance(layer, keras.layers.Dense):
        return last or layer.activation is keras.activations.relu
    if isinstance(layer, keras.layers.MaxPooling2D):
        return tuple(layer.pool_size) == tuple(layer.strides) == (2, 2) and all(
            side % 2 == 0 for side in layer.input.shape[1:3])
    if isinstance(layer, ConvBlock):
        return layer.convs == 1 and layer.pool is None and layer.drop is None \
            and layer.activation == "relu" and layer.strides == 1
    return isinstance(layer, (keras.layers.Dropout, keras.layers.GlobalAveragePooling2D))


def norm_scale(norm):
    """What a BatchNormalization layer multiplies its centred input by at inference."""
    import tensorflow as tf

    scale = tf.math.rsqrt(norm.moving_variance + norm.epsilon)
    return scale * norm.gamma if norm.scale else scale


def _backward(layer, inputs, output, grad, kernel=lambda variable: variable):
    """d logit / d inputs of `layer`, from d logit / d its output, in forward ops only; each
    kernel read through `kernel` (the on-device model's shared int8 weights)."""
    import keras
    import tensorflow as tf

    if isinstance(layer, keras.layers.Dense):  # ReLU dense layer
        return tf.matmul(grad * tf.cast(output > 0, grad.dtype), kernel(layer.kernel),
                         transpose_b=True)
    if isinstance(layer, keras.layers.GlobalAveragePooling2D):
        height, width = inputs.shape[1:3]
        return tf.zeros_like(inputs) + grad[:, None, None, :] / (height * width)
    if isinstance(layer, keras.layers.MaxPooling2D):  # to the first maximum of each window,
        blocks = tf.nn.space_to_depth(inputs, 2)        # as autodiff's MaxPoolGrad does
        shape = tf.concat([tf.shape(blocks)[:3], [4, inputs.shape[-1]]], 0)
        first = tf.one_hot(tf.argmax(tf.reshape(blocks, shape), axis=3), 4, axis=3)
        routed = first * grad[:, :, :, None, :]
        return tf.nn.depth_to_space(tf.reshape(routed, tf.shape(blocks)), 2)
    if isinstance(layer, keras.layers.Dropout):
        return grad
    grad = grad * tf.cast(output > 0, grad.dtype)  # a conv block: ReLU, batch norm, conv
    if layer.norm_layers:
        grad = grad * norm_scale(layer.norm_layers[0])
    return tf.nn.conv2d_transpose(grad, kernel(layer.conv_layers[0].kernel), tf.shape(inputs),
                                  strides=1, padding="SAME")


# ---------------------------------------------------------------------------- SavedModel

SIGNATURES = ("serving_default", "predict_pixels", "explain", "predict_mirrored",
              "explain_mirrored")
CROP_SIGNATURES = {(False, False): "predict_pixels", (False, True): "explain",
                   (True, False): "predict_mirrored", (True, True): "explain_mirrored"}


def crop_signature(mirror, explain):
    """The signature that classifies (and with `explain`, explains) crops as the face pipeline
    asks: mirror-averaged or not."""
    return CROP_SIGNATURES[bool(mirror), bool(explain)]


MIRRORLESS_EXPORT = ("{name} was exported before the mirrored signatures: its faces are decided "
                     "on the crop alone, not with their mirror image as the library decides "
                     "(about 1 point less accurate on faces in pictures); export the model again "
                     "to serve the library's decision")


def mirrored(signatures):
    """Whether an export's signatures include the face pipeline's mirror-averaged ones (an
    export from before them decides on the crop alone)."""
    return all(crop_signature(True, explain) in signatures for explain in (False, True))


def serving_signatures(model, layer, image_size, method=None):
    """{name: tf.function with its input signature}: the signatures of the SavedModel. The
    export writes them and `gimefive_tf.serve` runs them in process for a `.keras` model, so a
    server answers the same with or without an export. The explain signatures compute `method`
    (the library's default explanation) on `layer` (its default layer); the mirrored ones decide
    as the face pipeline does on faces cut from pictures."""
    import tensorflow as tf

    from gimefive_tf.data.pipeline import decode_image
    from gimefive_tf.explain.methods import DEFAULT_METHOD

    method = method or DEFAULT_METHOD
    layer = explained_layer(model, method, layer)
    pixels_spec = tf.TensorSpec([None, image_size, image_size, 3], tf.uint8, name="pixels")

    def predicting(mirror):
        @tf.function(input_signature=[pixels_spec])
        def predict(pixels):
            return _outputs(decide(model, tf.cast(pixels, tf.float32), mirror))
        return predict

    def explaining(mirror):
        @tf.function(input_signature=[pixels_spec])
        def explain(pixels):
            decided, heatmap = cam_in_graph(model, pixels, method, layer, mirror)
            return {**_outputs(decided), "heatmap": heatmap}
        return explain

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    def serving_default(images):
        pixels = tf.map_fn(lambda b: decode_image(b, image_size), images,
                           fn_output_signature=tf.TensorSpec([image_size, image_size, 3],
                                                             tf.uint8))
        return _outputs(decide(model, tf.cast(pixels, tf.float32)))

    return {"serving_default": serving_default, "predict_pixels": predicting(False),
            "explain": explaining(False), "predict_mirrored": predicting(True),
            "explain_mirrored": explaining(True)}


def export_savedmodel(model, folder, layer, image_size):
    """Write the TF Serving SavedModel with its three signatures."""
    import keras

    # No archive.track(model): the endpoints already capture every variable they use, and
    # tracking the Keras wrappers too stores each weight twice (keras-team/keras#23553).
    archive = keras.export.ExportArchive()
    for name, function in serving_signatures(model, layer, image_size).items():
        archive.add_endpoint(name, function)
    from gimefive_tf.quiet import tensorflow_info_silenced

    with tensorflow_info_silenced():
        archive.write_out(str(folder), verbose=False)


# -------------------------------------------------------------------------------- TFLite

def _lite_function(model, variant, layer, image_size, input_dtype):
    import tensorflow as tf

    def run(pixels):
        pixels = tf.cast(pixels, tf.float32)
        if variant == "cam":
            from gimefive_tf.explain.methods import DEFAULT_METHOD

            decided, heatmap = analytic_cam(model, pixels, DEFAULT_METHOD,
                                            explained_layer(model, DEFAULT_METHOD, layer),
                                            mirror=True)
            return {"probabilities": decided, "heatmap": heatmap}
        return {"probabilities": decide(model, pixels)}

    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    spec = tf.TensorSpec([1, image_size, image_size, 3], input_dtype, name="pixels")
    # weights become constants: the converter would otherwise keep Keras 3's resource
    # variables, which the int8 calibrator cannot read
    return convert_variables_to_constants_v2(tf.function(run).get_concrete_function(spec))


def export_tflite(model, path, variant, layer, image_size, calibration=None):
    """Convert one variant (fp32, fp16, int8, cam); every file takes uint8 RGB [1, size, size, 3].

    Float variants cast their uint8 input in the graph; int8 quantizes a float input that the
    converter then types as uint8 (scale 1, zero point 0 for pixels 0..255).
    """
    import tensorflow as tf

    int8 = variant == "int8"
    concrete = _lite_function(model, variant, layer, image_size,
                              tf.float32 if int8 else tf.uint8)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    if variant == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    if int8:
        if calibration is None or not len(calibration):
            raise GiMeFiveError(NEEDS_CALIBRATION)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [image[None].astype(np.float32)] for image in calibration)
        # the few float-only ops (PIL's luma rounding) keep float kernels
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                               tf.lite.OpsSet.TFLITE_BUILTINS]
        converter.inference_input_type = tf.uint8
    from gimefive_tf.quiet import tensorflow_info_silenced

    with tensorflow_info_silenced():
        path.write_bytes(converter.convert())


# -------------------------------------------------------------------------------- report

def median_latency_ms(function, repeats=50, warmup=5):
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return round(1000 * float(np.median(times)), 3)


def compare(reference, probabilities, labels=None):
    row = {"top1_agreement": float((probabilities.argmax(1) == reference.argmax(1)).mean()),
           "max_abs_diff": float(np.abs(probabilities - reference).max())}
    if labels is not None:
        row["accuracy"] = float((probabilities.argmax(1) == labels).mean())
    return row


def _artifact_runner(kind, path):
    """uint8 images [N, size, size, 3] -> probabilities [N, 6] through one exported artifact."""
    import tensorflow as tf

    if kind == "savedmodel":
        predict = tf.saved_model.load(str(path)).signatures["predict_pixels"]
        return lambda images: predict(pixels=tf.constant(images, tf.uint8))[
            "probabilities"].numpy()
    if kind == "mobile":
        from gimefive_tf.export.bundle import CLASSIFIER_FILE

        path = pathlib.Path(path) / CLASSIFIER_FILE
    lite = TFLiteModel(path)
    return lambda images: np.stack([lite(image)["probabilities"] for image in images])


MIRRORED_ARTIFACTS = ("tflite-cam", "mobile")  # decide as the face pipeline does (`decision`)


def size_mb(path):
    """An artifact's size in MiB: a file's, or all files' under a folder."""
    path = pathlib.Path(path)
    files = [f for f in path.rglob("*") if f.is_file()] if path.is_dir() else [path]
    return round(sum(f.stat().st_size for f in files) / 2 ** 20, 2)


def build_report(model, artifacts, sample, eval_set=None):
    """Parity, accuracy and latency of every artifact against the Keras model (deciding as the
    artifact does: plain, or mirror-averaged for the cam model)."""
    from gimefive_tf.inference import Predictor

    predictors = {mirror: Predictor(model, mirror=mirror) for mirror in (False, True)}
    one = sample[:1]
    rows = [{"artifact": "keras", "path": "", "size_mb": None, "top1_agreement": 1.0,
             "max_abs_diff": 0.0,
             "latency_ms": median_latency_ms(lambda: predictors[False](one))}]
    if eval_set is not None:
        rows[0]["accuracy"] = float((predictors[False](eval_set[0]).argmax(1)
                                     == eval_set[1]).mean())
    for kind, path in artifacts.items():
        mirror = kind in MIRRORED_ARTIFACTS
        row = {"artifact": kind, "path": str(path), "size_mb": size_mb(path),
               "compared_with": "keras, mirror-averaged" if mirror else "keras"}
        run = _artifact_runner(kind, path)
        row.update(compare(predictors[mirror](sample), run(sample)))
        row["latency_ms"] = median_latency_ms(lambda: run(sample[:1]))
        if eval_set is not None:
            row["accuracy"] = float((run(eval_set[0]).argmax(1) == eval_set[1]).mean())
        rows.append(row)
    return rows


# ------------------------------------------------------------------------- the whole export

def export_model(model=None, out="export", formats=("savedmodel", "tflite"),
                 calibration_data=None, sample_data=None, eval_data=None, name="gimefive",
                 version=1, overwrite=False, layout=None, limit=200, progress=None):
    """Write `out`/savedmodel/<name>/<version>/, `out`/tflite/ and `out`/report.json for
    `model` (a .keras path, a shipped name or None: the default) and return the report's rows.

    formats: from FORMATS. calibration_data: real faces (a data set path) for tflite-int8;
    sample_data: faces for the parity report (default: the calibration faces, else random
    pixels); eval_data: a labeled data set, for every artifact's accuracy; `limit` images of
    each (a seeded subset). Nothing is overwritten without `overwrite`, except a version folder
    a killed export left without saved_model.pb; every file appears whole or not at all.
    """
    from gimefive_tf.export.bundle import export_bundle
    from gimefive_tf.export.webapp import check_runtime, export_webapp
    from gimefive_tf.loading import load_model, model_file, shipped_entry
    from gimefive_tf.outputs import atomic_folder, atomic_path, writable_folder, write_text

    formats = formats.split(",") if isinstance(formats, str) else list(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise GiMeFiveError(f"unknown format(s) {', '.join(unknown) or '(none)'}; choose from "
                            f"{', '.join(FORMATS)}")
    formats = sorted(set(formats), key=FORMATS.index)  # the bundle before the app that copies it
    if "tflite-int8" in formats and not calibration_data:
        raise GiMeFiveError(NEEDS_CALIBRATION)
    if "web" in formats:
        check_runtime()
    model_path = model_file(model) if model is None or isinstance(model, (str, pathlib.Path)) \
        else None
    shipped = shipped_entry(model)
    model = load_model(model) if model_path is not None else model
    size = model.input_shape[1]
    layer = None  # the default explanation's layer

    def faces(path, labels=False):
        from gimefive_tf.data import load_arrays, read_dataset

        images, label_ids = load_arrays(read_dataset(path, layout=layout).sample(limit), size)
        return (images, label_ids) if labels else images

    calibration = faces(calibration_data) if calibration_data else None
    out = pathlib.Path(out)
    saved_dir = out / "savedmodel" / name / str(version)
    tflite_dir = out / "tflite"
    mobile_dir, web_dir = out / "mobile", out / "web"
    targets = ([saved_dir] if "savedmodel" in formats else []) + (
        [mobile_dir] if "mobile" in formats else []) + ([web_dir] if "web" in formats else []) + [
        tflite_dir / f"{name}_{TFLITE_FILES[f]}.tflite" for f in formats if f in TFLITE_FILES]
    # A version folder without saved_model.pb is what a killed export left: replaced freely.
    existing = [str(t) for t in targets if t.exists() and not (
        t == saved_dir and not (t / "saved_model.pb").is_file())]
    if (out / "report.json").exists():
        existing.append(str(out / "report.json"))
    if existing and not overwrite:
        raise GiMeFiveError(f"{', '.join(existing)} already exist(s); nothing was overwritten "
                            "(pass --overwrite, another --version or another --out)")
    writable_folder(tflite_dir if any(f in TFLITE_FILES for f in formats) else out)
    artifacts = {}
    for kind in (progress(formats, "exporting") if progress else formats):
        if kind == "savedmodel":
            with atomic_folder(saved_dir) as partial:  # a version appears whole, or not at all
                export_savedmodel(model, partial, layer, size)
            artifacts[kind] = saved_dir
        elif kind == "mobile":
            with atomic_folder(mobile_dir) as partial:
                export_bundle(model, partial, name, version, model_path, shipped)
            artifacts[kind] = mobile_dir
        elif kind == "web":
            with atomic_folder(web_dir) as partial:
                if "mobile" not in artifacts:  # else the bundle just written is copied in
                    export_bundle(model, partial / "bundle", name, version, model_path,
                                  shipped)
                export_webapp(partial, mobile_dir if "mobile" in artifacts else None)
        else:
            path = tflite_dir / f"{name}_{TFLITE_FILES[kind]}.tflite"
            with atomic_path(path) as temporary:
                export_tflite(model, temporary, TFLITE_FILES[kind], layer, size, calibration)
            artifacts[kind] = path
    if tflite_dir.exists():
        write_text(tflite_dir / "labels.txt", "\n".join(EMOTIONS) + "\n")
    if sample_data:
        sample = faces(sample_data)
    elif calibration is not None:
        sample = calibration
    else:
        sample = np.random.default_rng(0).integers(0, 256, (32, size, size, 3)).astype(np.uint8)
    eval_set = faces(eval_data, labels=True) if eval_data else None
    rows = build_report(model, artifacts, sample, eval_set)
    if "web" in formats:  # the bundle's model, run in the browser: checked by its browser test
        rows.append({"artifact": "web", "path": str(web_dir), "size_mb": size_mb(web_dir),
                     "top1_agreement": None, "max_abs_diff": None, "latency_ms": None})
    write_text(out / "report.json", json.dumps(rows, indent=2))
    return rows
