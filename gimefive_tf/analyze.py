"""The face pipeline as one call: picture -> faces -> crops framed like the training faces ->
emotions (and heatmaps), in one forward pass per batch of faces.

`predict`, `scores`, `explain maps`, `evaluate --crop face`, `video`, the server and batch all
go through `FacePipeline`, so the same photo gives the same answer everywhere:

    >>> import gimefive_tf
    >>> records = gimefive_tf.analyze("photo.jpg")          # one record per face
    >>> records[0]["emotion"], records[0]["box"]
"""

import dataclasses
import pathlib

import numpy as np

from gimefive_tf.choices import check_choice
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.faces import DEFAULT_DETECTOR, SEARCH_SIDE, FaceCropper
from gimefive_tf.labels import EMOTIONS
from gimefive_tf.pictures import read_picture

CROPS = ("face", "auto", "none")
NO_FACE = "no face found"


@dataclasses.dataclass
class FaceResult:
    """One face of one input (or, with `emotion` None, an input without a face and why)."""

    input: str
    face: int = None
    box: list = None
    landmarks: list = None
    emotion: str = None
    scores: dict = None
    reason: str = None
    target: str = None  # the emotion the heatmap explains
    angle: float = None  # degrees the face lies turned in the picture (found in a turned view)
    crop: np.ndarray = dataclasses.field(default=None, repr=False)
    heatmap: np.ndarray = dataclasses.field(default=None, repr=False)
    corners: np.ndarray = dataclasses.field(default=None, repr=False)  # the crop in the picture

    @property
    def probabilities(self):
        return None if self.scores is None else np.array([self.scores[e] for e in EMOTIONS])

    def to_dict(self, digits=4):
        """The JSON record: input, face, box [x, y, w, h], landmarks, emotion, scores, reason, and
        the angle of a face found in a turned view of the picture."""
        record = {"input": self.input, "face": self.face, "box": self.box,
                  "emotion": self.emotion,
                  "scores": None if self.scores is None else
                  {e: round(float(p), digits) for e, p in self.scores.items()}}
        if self.landmarks is not None:
            record["landmarks"] = [[round(float(v), 1) for v in p] for p in self.landmarks]
        if self.angle:
            record["angle"] = round(float(self.angle), 1)
        if self.reason:
            record["reason"] = self.reason
        return record


def demo_image():
    """(name, RGB uint8) of scikit-image's astronaut photo, read from the installed package."""
    try:
        from skimage import data
    except ImportError:
        raise GiMeFiveError("the built-in demo photo needs scikit-image; pass an image instead") \
            from None
    return "skimage:astronaut", data.astronaut()


def collect_inputs(paths, limit=None):
    """[(name, pixels or None)]: the demo photo, or every picture under the given paths
    (`pictures.collect`: folders in file-name order; the first `limit` of them when given)."""
    from gimefive_tf.pictures import collect

    if not paths:
        return [demo_image()]
    return [(str(path), None) for path in collect(paths)][:limit]


class FacePipeline:
    """Detect, frame, crop, classify and optionally explain the faces of pictures.

    model: a keras.Model or a `.keras` path (None: the shipped model). detector: one of
    faces.DETECTORS. framing: one of faces.FRAMINGS ("box": the detector's box mapped by its
    measured calibration; "eyes" or "landmarks": similarity alignment to the training faces'
    landmark template); None takes the calibration's measured best. crop: "face" (an input without a face says so), "auto"
    (the whole picture when no face is found) or "none" (inputs are already face crops).
    explain: None or a method of gimefive_tf.explain (heatmaps from the same forward pass),
    of `layer` (default: the last conv stage) for `target` (default: each face's prediction).
    max_side: search pictures scaled down to this side (SEARCH_SIDE; video: smaller); None:
    full size. turned: a picture with no face upright is searched again turned by quarter turns
    (a phone picture stored sideways); its faces are reported in the picture's own pixels and
    classified upright. Off for video frames. second_opinions=False: find faces as the
    on-device bundle does, without MTCNN (`gimefive_tf.faces.spec`).
    classifier: (crops, mirror) -> (probabilities, heatmaps or None, targets or None) in place
    of the in-process model (the server's batched signatures, which decide and explain as
    `gimefive_tf.decision` does); `model` then only names the model whose framing calibration
    applies, and `size` is the crops' side. False: no classifier, only `faces` (batch, where
    Beam's RunInference classifies the crops).
    mirror: decide on each crop and its mirror image together (their mean probabilities; a
    Grad-CAM map explains that decision on the crop as given), in the same forward pass
    (`gimefive_tf.decision`, the one home of that step on every runtime). A face
    cut from a photo is never framed quite like the training faces, and the mirror view averages
    out the asymmetric part: +1 point over all pictures on the faces-in-scenes benchmark.
    None: on for faces cut from pictures, off for --crop none (already-aligned crops, where the
    model's published figures hold).
    """

    def __init__(self, model=None, detector=DEFAULT_DETECTOR, framing=None, crop="face",
                 explain=None, layer=None, batch_size=64, max_side=SEARCH_SIDE, target=None,
                 classifier=None, size=64, mirror=None, turned=True, second_opinions=True):
        from gimefive_tf.loading import load_model

        check_choice("crop", crop, CROPS)
        from gimefive_tf.loading import model_file

        # a name ("rafdb") or a path, resolved once: the calibration lives beside the file
        model_path = model_file(model) if isinstance(model, (str, pathlib.Path)) else None
        self.model = None
        if classifier is None:
            self.model = load_model(model) if model_path is not None or model is None else model
        self.size = int(self.model.input_shape[1]) if self.model is not None else int(size)
        self.cropper = FaceCropper(detector, framing, model_path, self.size, max_side, turned,
                                   second_opinions)
        self.detector, self.crop, self.batch_size = detector, crop, int(batch_size)
        self.target, self._classifier = target, classifier
        self.mirror = crop != "none" if mirror is None else bool(mirror)
        self._explainer, self._predictor = None, None
        if classifier is None and explain:
            from gimefive_tf.explain import make_explainer

            from gimefive_tf.explain.base import CamExplainer
            from gimefive_tf.explain.methods import METHODS

            # pixel methods explain one view: they decide on the crop alone
            self.mirror = self.mirror and issubclass(METHODS.get(explain, object), CamExplainer)
            self._explainer = make_explainer(self.model, explain, layer, batch_size, self.mirror)
            if hasattr(self._explainer, "realtime"):  # faces one picture or frame at a time
                self._explainer.realtime = True
        elif classifier is None:
            from gimefive_tf.inference import Predictor

            self._predictor = Predictor(self.model, batch_size, mirror=self.mirror)

    # -- the steps ------------------------------------------------------------------------

    def faces(self, image, trusted=(), thorough=True, turned=True):
        """[(Box or None, crop, its corners in the picture)] for one RGB picture; `trusted`:
        faces known from the last video frame; thorough=False: the video's quicker search (no
        MTCNN search of its own when nothing is found);
        turned=False: a video frame, searched only as it is."""
        from gimefive_tf.data.pipeline import resize_pixels

        image = np.asarray(image)
        if self.crop != "none":
            found = self.cropper(image, trusted, thorough, turned)
            if found or self.crop == "face":
                return found
        return [(None, resize_pixels(image, self.size).numpy(), None)]

    def frame(self, image, box):
        """(crop, its corners in the picture) of one detected face, framed like training."""
        return self.cropper.frame(image, box)

    @property
    def how(self):
        return self.cropper.how

    @property
    def framing(self):
        return self.cropper.framing

    def classify(self, crops):
        """(probabilities (N, 6), heatmaps (N, size, size) and explained classes, or None and
        None): one forward pass per batch of crops."""
        crops = np.asarray(crops)
        if self._classifier is False:
            raise GiMeFiveError("this FacePipeline finds faces only (classifier=False)")
        if not len(crops):
            return np.zeros((0, len(EMOTIONS)), np.float32), None, None
        if self._classifier is not None:
            return self._classifier(crops, self.mirror)
        if self._explainer is not None:
            heatmaps, targets, probabilities = self._explainer.explain(crops, self.target)
            return probabilities, heatmaps, targets
        return self._predictor(crops), None, None

    def classify_all(self, crops, progress=None):
        """Probabilities (N, 6) of many crops, a batch at a time (with a progress bar)."""
        crops = np.asarray(crops)
        starts = range(0, len(crops), self.batch_size)
        if progress is not None:
            starts = progress(starts, "classifying", total=len(starts))
        parts = [self.classify(crops[start:start + self.batch_size])[0] for start in starts]
        return np.concatenate(parts) if parts else self.classify(crops)[0]

    # -- whole pictures -------------------------------------------------------------------

    def __call__(self, image, name="image"):
        """FaceResults for one picture (an array, or a path read here)."""
        return self.run([(name, image)])

    def run(self, inputs, progress=None):
        """FaceResults for many (name, image-or-None) inputs; None means read `name` from disk.

        Faces from several pictures share forward passes; unreadable files become a record
        with the reason instead of stopping the run.
        """
        pending, results = [], []
        items = progress(inputs, "finding faces") if progress else inputs
        for name, image in items:
            try:
                image = read_picture(name) if image is None else image
            except GiMeFiveError as error:
                results.append(FaceResult(str(name), reason=str(error)))
                continue
            found = self.faces(image)
            if not found:
                results.append(FaceResult(str(name), reason=NO_FACE))
            for index, (box, crop, corners) in enumerate(found):
                result = FaceResult(
                    str(name), face=index if box is not None else None,
                    box=None if box is None else box.to_list(),
                    landmarks=None if box is None or box.landmarks is None else
                    [list(p) for p in box.landmarks], crop=crop, corners=corners,
                    angle=None if box is None or not box.angle else box.angle,
                    reason=None if box is not None else
                    ("whole image" if self.crop == "none" else "no face found: whole image"))
                results.append(result)
                pending.append(result)
            if len(pending) >= self.batch_size:
                self._finish(pending)
                pending = []
        self._finish(pending)
        return results

    def _finish(self, pending):
        if not pending:
            return
        probabilities, heatmaps, targets = self.classify(np.stack([r.crop for r in pending]))
        for index, (result, probs) in enumerate(zip(pending, probabilities)):
            result.scores = dict(zip(EMOTIONS, map(float, probs)))
            result.emotion = EMOTIONS[int(np.argmax(probs))]
            if heatmaps is not None:
                result.heatmap, result.target = heatmaps[index], EMOTIONS[int(targets[index])]


def analyze(image, model=None, detector=DEFAULT_DETECTOR, framing=None, crop="face",
            explain=None, turned=True):
    """One record (dict) per face of `image` (a path or an RGB array): box [x, y, w, h],
    landmarks, emotion, six scores, and with `explain` a "heatmap" (the crop's size); a picture
    without a face gives one record with emotion None and the reason. turned=False: search the
    picture only as stored (see FacePipeline).

    For many pictures build one FacePipeline and call `run`: the model loads once.
    """
    pipeline = FacePipeline(model, detector, framing, crop, explain, turned=turned)
    name = str(image) if isinstance(image, (str, pathlib.Path)) else "image"
    results = pipeline.run([(name, None if isinstance(image, (str, pathlib.Path)) else image)])
    records = []
    for result in results:
        record = result.to_dict()
        if explain and result.heatmap is not None:
            record["heatmap"] = result.heatmap
        records.append(record)
    return records


def to_frame(results):
    """A pandas DataFrame of FaceResults (or their dicts): one row per face, scores as columns."""
    import pandas as pd

    rows = []
    for result in results:
        record = result.to_dict() if isinstance(result, FaceResult) else dict(result)
        scores = record.pop("scores", None) or {}
        box = record.pop("box", None) or [None] * 4
        record.pop("heatmap", None)
        record.pop("landmarks", None)
        rows.append({**record, "x": box[0], "y": box[1], "w": box[2], "h": box[3],
                     **{e: scores.get(e) for e in EMOTIONS}})
    columns = ["input", "face", "x", "y", "w", "h", "emotion", *EMOTIONS, "reason"]
    integers = {name: "Int64" for name in ("face", "x", "y", "w", "h")}  # blank, not NaN
    frame = pd.DataFrame(rows)
    frame = frame.astype({name: kind for name, kind in integers.items() if name in frame})
    return frame.reindex(columns=[c for c in columns if c in frame] +
                         [c for c in frame if c not in columns])


def plot_faces(image, results, path=None):
    """The picture with each face's crop outlined and numbered, and each face's six scores."""
    from matplotlib.figure import Figure

    from gimefive_tf.outputs import finish_figure

    faces = [r for r in results if r.scores is not None][:6]
    figure = Figure(figsize=(4 + 3.2 * len(faces), 3.6))
    axes = figure.subplots(1, 1 + len(faces), squeeze=False)
    picture = axes[0, 0]
    picture.imshow(image)
    picture.axis("off")
    if not faces:
        title = results[0].input
    else:
        title = f"{len(faces)} face(s)" if faces[0].box else "whole image"
    picture.set_title(title, fontsize=9)
    order = np.arange(len(EMOTIONS))[::-1]
    for number, (axis, result) in enumerate(zip(axes[0, 1:], faces)):
        if result.corners is not None:
            outline = np.vstack([result.corners, result.corners[:1]])
            picture.plot(outline[:, 0], outline[:, 1], color="tab:orange", linewidth=1.5)
            picture.text(*result.corners[0], f"#{number}", color="white", fontsize=8,
                         backgroundcolor="tab:orange", va="bottom")
        probabilities = result.probabilities
        colors = ["tab:orange" if i == probabilities.argmax() else "tab:blue" for i in order]
        axis.barh([EMOTIONS[i] for i in order], probabilities[order], color=colors)
        axis.set_xlim(0, 1)
        axis.set_xlabel("probability")
        axis.set_title(f"#{number}: {result.emotion}", fontsize=9)
    figure.tight_layout()
    return finish_figure(figure, path, dpi=110)
