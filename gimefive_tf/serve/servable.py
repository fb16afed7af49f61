"""A model as TF Serving sees it: named versions of named signatures, and the REST API's JSON.

A `Servable` is built from an export's `savedmodel/<name>/` folder (every numbered version) or
from a `.keras` model (version 1, the same three signatures the export writes, run in process).
The JSON mapping follows TF Serving's REST API: row format (`instances`) and columnar format
(`inputs`), `{"b64": ...}` for bytes, `predictions` / `outputs` in the response.
"""

import base64
import dataclasses
import pathlib

import numpy as np

from gimefive_tf.errors import GiMeFiveError


class RequestError(Exception):
    """A request TF Serving would refuse: `status` is the HTTP code, the message its error."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


_DTYPES = {"uint8": "DT_UINT8", "int32": "DT_INT32", "int64": "DT_INT64", "float32": "DT_FLOAT",
           "float64": "DT_DOUBLE", "string": "DT_STRING", "bool": "DT_BOOL"}


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str     # TensorFlow's name: uint8, float32, string, ...
    shape: tuple   # None for an unknown dimension

    def to_json(self, signature):
        return {"dtype": _DTYPES.get(self.dtype, "DT_INVALID"),
                "tensor_shape": {"dim": [{"size": str(-1 if d is None else d), "name": ""}
                                         for d in self.shape], "unknown_rank": False},
                "name": f"{signature}_{self.name}:0"}


class Signature:
    """One callable signature: named inputs and outputs, all batched along the first axis."""

    def __init__(self, name, function, inputs, outputs, keyword=True):
        self.name, self.function, self.keyword = name, function, keyword
        self.inputs, self.outputs = inputs, outputs

    def __call__(self, arrays):
        """{input name: array} -> {output name: numpy array}."""
        import tensorflow as tf

        tensors = {name: tf.constant(arrays[name], dtype=info.dtype)
                   for name, info in self.inputs.items()}
        result = self.function(**tensors) if self.keyword else \
            self.function(*tensors.values())
        return {name: result[name].numpy() for name in self.outputs}

    def to_json(self):
        return {"inputs": {n: i.to_json(self.name) for n, i in self.inputs.items()},
                "outputs": {n: o.to_json(self.name) for n, o in self.outputs.items()},
                "method_name": "tensorflow/serving/predict"}


def _info(name, spec):
    return TensorInfo(name, spec.dtype.name, tuple(spec.shape.as_list()))


class Servable:
    """A named model with versions {int: {signature name: Signature}}."""

    def __init__(self, name, versions, image_size=64, source=""):
        if not versions:
            raise GiMeFiveError(f"no model versions to serve for {name}")
        self.name, self.versions, self.image_size, self.source = name, versions, image_size, source

    @property
    def latest(self):
        return max(self.versions)

    def version(self, name, version=None):
        """The signatures of `version` (None: the newest) of model `name`, or a 404."""
        if name != self.name:
            raise RequestError("Servable not found for request: "
                               f"{'Latest' if version is None else 'Specific'}({name}"
                               f"{'' if version is None else f', {version}'})", 404)
        if version is None:
            return self.latest, self.versions[self.latest]
        try:
            number = int(version)
        except ValueError:
            raise RequestError(f"Servable not found for request: Specific({name}, {version})",
                               404) from None
        if number not in self.versions:
            raise RequestError(f"Servable not found for request: Specific({name}, {number})",
                               404)
        return number, self.versions[number]

    @classmethod
    def from_keras(cls, model, name, layer=None):
        """Version 1 of `model` (a keras.Model) with the export's three signatures."""
        from gimefive_tf.export import serving_signatures

        size = int(model.input_shape[1])
        signatures = {}
        for sig_name, function in serving_signatures(model, layer, size).items():
            concrete = function.get_concrete_function()
            specs = concrete.structured_input_signature[0]
            signatures[sig_name] = Signature(
                sig_name, function, {s.name: _info(s.name, s) for s in specs},
                {n: _info(n, t) for n, t in concrete.structured_outputs.items()}, keyword=False)
        return cls(name, {1: signatures}, size, source="keras")

    @classmethod
    def from_savedmodel(cls, folder):
        """Every numbered version under an export's `savedmodel/<name>/` folder (the folder's
        name is the model's); a version folder without `saved_model.pb` is skipped."""
        import tensorflow as tf

        folder = pathlib.Path(folder)
        if not folder.is_dir():
            raise GiMeFiveError(f"{folder} is not a folder; pass an export's savedmodel/<name>/")
        versions, size, loaded_models = {}, 64, []
        for child in sorted(folder.iterdir()):
            if not (child.name.isdigit() and (child / "saved_model.pb").is_file()):
                continue
            loaded = tf.saved_model.load(str(child))
            loaded_models.append(loaded)  # the signatures' variables live as long as it does
            signatures = {}
            for sig_name, concrete in loaded.signatures.items():
                specs = concrete.structured_input_signature[1]
                signatures[sig_name] = Signature(
                    sig_name, concrete, {n: _info(n, s) for n, s in specs.items()},
                    {n: _info(n, t) for n, t in concrete.structured_outputs.items()})
                if "pixels" in specs:
                    size = int(specs["pixels"].shape[1])
            versions[int(child.name)] = signatures
        if not versions:
            raise GiMeFiveError(f"{folder} holds no SavedModel version (numbered folders with "
                                "saved_model.pb); pass an export's savedmodel/<name>/")
        servable = cls(folder.name, versions, size, source=str(folder))
        servable.loaded_models = loaded_models
        return servable

    def status(self, version=None):
        """GetModelStatusResponse as JSON."""
        numbers = sorted(self.versions, reverse=True) if version is None else \
            [self.version(self.name, version)[0]]
        return {"model_version_status": [
            {"version": str(n), "state": "AVAILABLE",
             "status": {"error_code": "OK", "error_message": ""}} for n in numbers]}

    def metadata(self, version=None):
        """GetModelMetadataResponse as JSON."""
        number, signatures = self.version(self.name, version)
        return {"model_spec": {"name": self.name, "signature_name": "", "version": str(number)},
                "metadata": {"signature_def": {
                    "@type": "type.googleapis.com/tensorflow.serving.SignatureDefMap",
                    "signature_def": {
                    n: s.to_json() for n, s in signatures.items()}}}}


# ------------------------------------------------------------------------- JSON mapping

def _decode_value(value, info):
    """A JSON value (nested lists, {"b64": ...}) as a numpy array of `info`'s dtype."""
    if info.dtype == "string":
        rank = len(info.shape)

        def to_bytes(item, depth=0):
            if isinstance(item, list):
                if depth == rank:  # a list where the signature has a string
                    raise RequestError(f"input {info.name!r} nests lists deeper than its shape "
                                       f"(rank {rank}); send one string or {{\"b64\"}} per "
                                       "instance")
                return [to_bytes(i, depth + 1) for i in item]
            if depth != rank:
                raise RequestError(f"input {info.name!r} has rank {rank}: every value must lie "
                                   f"at depth {rank} of the lists")
            if isinstance(item, dict):
                if set(item) != {"b64"} or not isinstance(item["b64"], str):
                    raise RequestError(f"input {info.name!r}: binary values are written "
                                       '{"b64": "<base64>"}')
                try:
                    return base64.b64decode(item["b64"], validate=True)
                except ValueError:
                    raise RequestError(f"input {info.name!r}: invalid base64") from None
            if isinstance(item, str):
                return item.encode()
            raise RequestError(f"input {info.name!r} expects strings or {{\"b64\": ...}}")
        array = np.array(to_bytes(value), dtype=object)
        if array.ndim != rank:  # every value at the same depth, yet lists of unequal length
            raise RequestError(f"input {info.name!r} is ragged: nested lists of one shape, "
                               "please")
        return array
    try:
        array = np.array(value, dtype=np.float64)
    except (ValueError, TypeError):
        raise RequestError(f"input {info.name!r} expects numbers of type {info.dtype} in "
                           "nested lists of one shape") from None
    if info.dtype == "uint8" and (np.any(array < 0) or np.any(array > 255)
                                  or np.any(array != np.round(array))):
        raise RequestError(f"input {info.name!r} is uint8: whole numbers 0-255")
    return array.astype(info.dtype)


def _check_shape(array, info):
    expected = info.shape
    if array.ndim != len(expected) or any(e is not None and e != a
                                          for e, a in zip(expected, array.shape)):
        shown = ", ".join("-1" if e is None else str(e) for e in expected)
        raise RequestError(f"input {info.name!r} has shape {list(array.shape)}; the signature "
                           f"takes [{shown}]")
    return array


def parse_predict(body, signatures):
    """(signature name, {input: array}, "row" or "columnar") from a :predict JSON body."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object with \"instances\" or "
                           "\"inputs\"")
    name = body.get("signature_name") or "serving_default"
    if not isinstance(name, str) or name not in signatures:
        raise RequestError(f"Serving signature name: \"{name}\" not found in signature def "
                           f"(available: {', '.join(sorted(signatures))})")
    signature = signatures[name]
    if "instances" in body and "inputs" in body:
        raise RequestError("Not formatted correctly: both \"instances\" and \"inputs\" are "
                           "present; use one")
    inputs = signature.inputs
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise RequestError("\"instances\" must be a non-empty list")
        named = all(isinstance(r, dict) and "b64" not in r for r in rows)
        if len(inputs) > 1 and not named:
            raise RequestError("with several named inputs every instance is an object "
                               f"with {', '.join(inputs)}")
        if named:
            missing = [n for n in inputs if any(n not in r for r in rows)]
            if missing:
                raise RequestError(f"instances lack input {missing[0]!r}")
            columns = {n: [r[n] for r in rows] for n in inputs}
        else:
            columns = {next(iter(inputs)): rows}
        layout = "row"
    elif "inputs" in body:
        value = body["inputs"]
        if isinstance(value, dict) and "b64" not in value:
            missing = [n for n in inputs if n not in value]
            if missing:
                raise RequestError(f"\"inputs\" lacks input {missing[0]!r}")
            columns = {n: value[n] for n in inputs}
        elif len(inputs) == 1:
            columns = {next(iter(inputs)): value}
        else:
            raise RequestError(f"\"inputs\" must be an object with {', '.join(inputs)}")
        layout = "columnar"
    else:
        raise RequestError("Missing \"instances\" or \"inputs\" in the request")
    arrays = {n: _check_shape(_decode_value(v, inputs[n]), inputs[n]) for n, v in
              columns.items()}
    if len({len(a) for a in arrays.values()}) > 1:
        raise RequestError("all inputs must have the same 0-th dimension")
    if not len(next(iter(arrays.values()))):
        raise RequestError("the request holds no instance")
    return name, arrays, layout


def _jsonable(array, name):
    if array.dtype == object or array.dtype.kind in "SU":
        if name.endswith("_bytes"):
            encode = np.vectorize(lambda b: {"b64": base64.b64encode(b).decode()}, otypes=[object])
        else:
            encode = np.vectorize(lambda b: b.decode() if isinstance(b, bytes) else str(b),
                                  otypes=[object])
        return encode(array).tolist() if array.size else array.tolist()
    return array.tolist()


def format_predict(outputs, layout):
    """The response body for `outputs` ({name: array}) in the request's layout."""
    values = {n: _jsonable(a, n) for n, a in outputs.items()}
    if layout == "columnar":
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    count = len(next(iter(values.values())))
    return {"predictions": [{n: v[i] for n, v in values.items()} for i in range(count)]}
