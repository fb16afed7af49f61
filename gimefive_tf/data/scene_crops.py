"""Training faces as the face pipeline cuts them from photos, as a labeled csv-layout set.

A model trained on aligned crops meets something else in photos and video: a face resized,
relit and JPEG-compressed, then framed by a detector's box and eyes. Each face here is shown as a
camera would show it (`gimefive_tf.scenes`: placed in a picture at a random size, place, turn and
lighting, then compressed at an ordinary quality) and cut back out by the face pipeline's own
cropper, so a model trained on these crops beside the aligned faces learns what the pipeline
gives it. A face the pipeline does not find in its picture is left out, as it would be in use.
"""

import pathlib

import numpy as np

from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.faces import DEFAULT_DETECTOR, FaceCropper
from gimefive_tf.labels import EMOTIONS

SIDES = (70, 260)  # the face's side in a 640x480 picture: the pasted pictures' 90-240 and beyond
MAX_ANGLE = 15.0  # degrees a face is turned in the picture plane, either way
QUALITIES = (50, 95)  # JPEG qualities drawn per picture: web uploads and phone photos
PIXELS_WITHOUT_FILES = ("--with-source names the dataset's image files, and this one keeps its "
                        "faces as CSV pixels; export it first (export-csv)")


def scene_crops(faces, cropper, seed=0, copy=0, start=0, sides=SIDES, max_angle=MAX_ANGLE,
                qualities=QUALITIES):
    """(index, crop or None) for each face of `faces` (aligned uint8 crops, the dataset's rows
    from `start` on): the crop `cropper` (a FaceCropper) cuts where it finds the face in its
    picture, None where it does not. Each face's picture depends only on `seed`, `copy` and
    its row, so a set can be made in parts."""
    from gimefive_tf.scenes import compressed, matching_face, random_scene

    for index, face in enumerate(faces, start):
        rng = np.random.default_rng([seed, copy, index])
        scene = random_scene(face, rng, sides=sides, max_angle=max_angle)
        picture = compressed(scene.picture, int(rng.integers(qualities[0], qualities[1] + 1)))
        found = cropper(picture, turned=False)
        box = matching_face([box for box, _, _ in found], scene)
        yield index, next((crop for candidate, crop, _ in found if candidate is box), None)


def write_scene_crops(table, out, seed=0, copies=1, with_source=False, size=64,
                      detector=DEFAULT_DETECTOR, framing=None, model=None, progress=None,
                      overwrite=False):
    """Write out/scenes/<row>_<copy>_<emotion>.png (lossless: the crop as the model would get
    it; <row>: the face's row in `table`, a LabeledImages) and out/scenes_labels.csv for every
    face the pipeline finds, in `copies` pictures each, framed by `model`'s calibration (a
    name or .keras path; None: the shipped model's); `with_source`: the CSV also names the
    table's own images (by absolute path), so one DATA trains on both. An earlier set in
    `out` is written over only with `overwrite`; GiMeFiveError when no face is found."""
    import cv2

    from gimefive_tf.data.pipeline import load_arrays
    from gimefive_tf.data.tools import refuse_existing, write_labels_csv
    from gimefive_tf.loading import model_file

    if with_source and table.pixels is not None:
        raise GiMeFiveError(PIXELS_WITHOUT_FILES)
    out = pathlib.Path(out)
    csv_path, folder = out / "scenes_labels.csv", out / "scenes"
    refuse_existing([csv_path, folder], overwrite)
    model_path = model_file(model) if model is not None else None
    faces, labels = load_arrays(table, size)
    cropper = FaceCropper(detector, framing, model_path, size=size, turned=False)
    rows, missed = [], 0
    for copy in range(copies):
        crops = scene_crops(faces, cropper, seed, copy)
        if progress is not None:
            crops = progress(crops, f"scenes {copy + 1}/{copies}", total=len(faces))
        for index, crop in crops:
            if crop is None:
                missed += 1
                continue
            if not rows:  # made with the first crop: a set of no face leaves none
                folder.mkdir(exist_ok=True)
            name = f"{index:06d}_{copy}_{EMOTIONS[labels[index]]}.png"
            if not cv2.imwrite(str(folder / name), np.ascontiguousarray(crop[..., ::-1])):
                raise GiMeFiveError(f"could not write {folder / name}")
            rows.append((f"scenes/{name}", int(labels[index])))
    written = len(rows)
    if not written:
        raise GiMeFiveError(f"the face pipeline found none of the {len(faces)} faces in their "
                            "pictures; nothing was written")
    if with_source:
        rows += [(str(pathlib.Path(source).resolve()), int(label))
                 for source, label in zip(table.frame["source"].astype(str), labels)]
    write_labels_csv(csv_path, rows)
    return {"csv": str(csv_path), "faces": len(faces), "copies": copies, "written": written,
            "not_found": missed, "found": round(written / (len(faces) * copies), 4),
            "source_rows": len(rows) - written}
