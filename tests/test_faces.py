"""The face pipeline: detection, calibrated framing, alignment, one forward pass, every face."""

import dataclasses
import json

import cv2
import keras
import numpy as np
import pytest

from gimefive_tf import scenes
from gimefive_tf.analyze import NO_FACE, FacePipeline, analyze, to_frame
from gimefive_tf.calibrate import fit_framing
from gimefive_tf.faces import (Box, FaceCropper, FaceTracker, Framing, align_face, align_matrix,
                               crop_square, detect_faces, frame_face, frame_matrix,
                               framing_path, iou,
                               read_calibration, write_calibration)
from gimefive_tf.faces.framing import crop_corners
from gimefive_tf.faces.search import same_place
from gimefive_tf.faces.tracking import carry_eyes

TEMPLATE = ((0.3, 0.35), (0.7, 0.35), (0.5, 0.55), (0.5, 0.75))


def validation_faces(datasets_dir, count):
    """Real RAF-DB faces from the shipped model's validation split (never trained on)."""
    from gimefive_tf.data import load_arrays, read_dataset, stratified_split

    _, validation = stratified_split(read_dataset(datasets_dir / "RAF-DB"), 0.1, seed=0)
    faces, labels = load_arrays(validation.subset(np.arange(count)), 64)
    return faces, np.asarray(labels)


def test_fit_framing_recovers_a_known_scale_offset_and_template():
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(25):
        side, cx, cy = rng.uniform(80, 200), rng.uniform(150, 450), rng.uniform(150, 300)
        scene = scenes.Scene(np.zeros((1, 1, 3), np.uint8), cx, cy, side)
        box_side = side / 1.25                     # the detector sees 80% of the frame ...
        bx, by = cx - 0.1 * box_side, cy + 0.05 * box_side  # ... a little left and low
        marks = tuple((cx - side / 2 + u * side, cy - side / 2 + v * side) for u, v in TEMPLATE)
        pairs.append((Box(int(round(bx - box_side / 2)), int(round(by - box_side / 2)),
                          int(round(box_side)), int(round(box_side)), 1.0, marks), scene))
    framing = fit_framing(pairs)
    assert framing.scale == pytest.approx(1.25, abs=0.02)
    assert framing.dx == pytest.approx(0.1, abs=0.01) and framing.dy == pytest.approx(-0.05, abs=0.01)
    np.testing.assert_allclose(framing.template, TEMPLATE, atol=1e-3)
    # applied: the framed square of each box is the scene's true frame
    for box, scene in pairs:
        x0, y0, side = framing.square(box)
        assert abs(x0 - scene.square[0]) < 0.03 * side and abs(side - scene.side) < 0.03 * side


@pytest.mark.data
def test_calibration_measures_the_detectors_own_boxes(datasets_dir, model_path):
    """BlazeFace's framing is fitted on BlazeFace's boxes: a face that only MTCNN's second
    opinion finds (a five-point box, RAF-DB's train_01352 in calibrate's scenes of seed 2)
    neither mixes its landmarks into BlazeFace's template nor counts as found."""
    import cv2

    from gimefive_tf.calibrate import calibrate_detector
    from gimefive_tf.inference import Predictor
    from gimefive_tf.loading import load_model

    folder = datasets_dir / "RAF-DB" / "train"
    faces = np.stack([cv2.imread(str(folder / name))[..., ::-1] for name in (
        "train_08757_aligned_happiness.jpg", "train_01352_aligned_anger.jpg")])
    predictor = Predictor(load_model(model_path))
    entry = calibrate_detector("blazeface", faces, predictor(faces).argmax(1), predictor, seed=2)
    assert entry["found"] == 0.5
    assert len(entry["framing"].template) == 4  # BlazeFace's eyes, nose tip, mouth


def test_calibration_is_stored_beside_the_model_and_used(tmp_path):
    model_file = tmp_path / "mine.keras"
    framing = Framing(1.2, 0.01, -0.06, TEMPLATE)
    write_calibration(framing_path(model_file), {"blazeface": {
        "framing": framing, "default": "eyes", "found": 0.97, "agreement": {}}}, {"faces": 1})
    assert framing_path(model_file).name == "mine.framing.json"
    assert read_calibration(framing_path(model_file))["blazeface"]["framing"] == framing
    cropper = FaceCropper("blazeface", model_path=model_file)
    assert cropper.framing == framing and cropper.how == "eyes"
    assert FaceCropper("blazeface", "box", model_path=model_file).how == "box"
    (tmp_path / "bad.framing.json").write_text("{}")
    with pytest.raises(ValueError, match="not a framing calibration"):
        FaceCropper(model_path=tmp_path / "bad.keras")


def test_the_shipped_calibration_covers_every_detector():
    from gimefive_tf.faces import DETECTORS, find_calibration

    path, calibration = find_calibration(None)
    assert path is not None and set(calibration) == set(DETECTORS)
    for entry in calibration.values():
        assert 0.6 < entry["framing"].scale < 1.6 and entry["found"] > 0.5
        assert 90 < entry["framing"].mean < 160 and 30 < entry["framing"].std < 80
    assert calibration["blazeface"]["framing"].template is not None


def test_crops_are_lit_like_the_training_faces():
    from gimefive_tf.faces import match_lighting

    face = np.random.default_rng(4).integers(60, 200, (64, 64, 3)).astype(np.uint8)
    dim = (face * 0.4).astype(np.uint8)
    lit = match_lighting(dim, Framing(mean=120.0, std=50.0))
    assert abs(lit.mean() - 120) < 1 and abs(lit.std() - 50) < 1.5
    assert match_lighting(dim, Framing()) is dim                 # no calibration: untouched
    assert np.corrcoef(lit.ravel(), face.ravel())[0, 1] > 0.99    # the same face, relit


def test_alignment_maps_the_template_onto_itself():
    points = np.array(TEMPLATE) * 64
    np.testing.assert_allclose(align_matrix(points, TEMPLATE, 64), [[1, 0, 0], [0, 1, 0]],
                               atol=1e-5)
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(align_face(image, points, TEMPLATE, 64), image)
    # a face turned by 20 degrees and twice as large comes back upright at the template
    turn = cv2.getRotationMatrix2D((32, 32), 20, 2.0)
    turn[:, 2] += (100, 100)
    moved = cv2.transform(points[None], turn)[0]
    matrix = align_matrix(moved, TEMPLATE, 64)
    np.testing.assert_allclose(cv2.transform(moved[None], matrix)[0], points, atol=1e-3)


def test_landmark_framing_aligns_a_box_with_another_detectors_landmarks_by_its_eyes():
    framing = Framing(template=TEMPLATE)
    eyes = ((75.0, 85.0), (125.0, 85.0))
    mtcnn_like = Box(50, 50, 100, 100, 0.99, eyes + ((100, 110), (80, 130), (120, 130)))
    np.testing.assert_allclose(frame_matrix(mtcnn_like, framing, "landmarks"),
                               align_matrix(eyes, TEMPLATE[:2], 64), atol=1e-6)
    own = Box(50, 50, 100, 100, 0.99, eyes + ((100, 110), (100, 135)))
    np.testing.assert_allclose(frame_matrix(own, framing, "landmarks"),
                               align_matrix(own.landmarks, TEMPLATE, 64), atol=1e-6)


def test_crops_replicate_the_border_and_average_large_faces():
    image = np.arange(100 * 120 * 3, dtype=np.uint8).reshape(100, 120, 3)
    np.testing.assert_array_equal(crop_square(image, (10, 20, 64), 64), image[20:84, 10:74])
    corner = crop_square(image, (-32, -32, 64), 64)
    assert (corner[:32, :32] == image[0, 0]).all()   # outside the picture: its edge
    big = np.zeros((3000, 3000, 3), np.uint8)
    big[:, 1500:] = 255
    crop = crop_square(big, (1000, 1000, 1000), 64)
    assert crop[:, :31].max() == 0 and crop[:, 33:].min() == 255


def test_eyes_placed_by_a_closer_look_move_with_the_face_it_follows():
    last = Box(0, 0, 20, 20, landmarks=((0, 0), (10, 0)), eyes=((1, 1), (11, 1)))
    moved_and_grown = Box(5, 5, 40, 40, landmarks=((5, 5), (25, 5)))
    assert carry_eyes(moved_and_grown, last).eyes == ((7, 7), (27, 7))
    turned = Box(5, 5, 40, 40, landmarks=((5, 5), (5, 15)))  # turned by 90 degrees
    assert carry_eyes(turned, last).eyes == ((4, 6), (4, 16))
    plain = Box(0, 0, 20, 20, landmarks=((0, 0), (10, 0)))
    assert carry_eyes(moved_and_grown, plain) == moved_and_grown


def test_a_followed_face_keeps_its_eyes_and_only_a_new_one_is_looked_at_closely():
    cropper, blank = FaceCropper(), np.zeros((200, 200, 3), np.uint8)
    marks = ((80, 90), (120, 90), (100, 110), (100, 130))
    known = Box(50, 50, 100, 100, landmarks=marks, eyes=((82, 92), (122, 92)))
    box = Box(54, 50, 100, 100, landmarks=tuple((x + 4, y) for x, y in marks))
    assert cropper._with_eyes(blank, box, [known]).eyes == ((86, 92), (126, 92))
    assert cropper._with_eyes(blank, box, []).eyes is None  # ONet sees no face on black


def test_tracker_keeps_ids_and_names_the_faces_it_lost():
    tracker = FaceTracker(max_missing=1)
    assert tracker.update([Box(10, 10, 50, 50), Box(200, 10, 50, 50)]) == [1, 2]
    assert tracker.lost([Box(205, 12, 50, 50)]) == [(1, Box(10, 10, 50, 50))]
    assert tracker.update([Box(205, 12, 50, 50)]) == [2]
    assert tracker.lost([Box(205, 12, 50, 50)]) == [(1, Box(10, 10, 50, 50))]  # a frame ago
    assert tracker.lost([Box(205, 12, 50, 50)], within=1) == []  # only the last frame's
    assert tracker.update([Box(12, 10, 50, 50)]) == [1]    # back within max_missing: same id
    tracker.update([])
    tracker.update([])
    assert tracker.update([Box(205, 12, 50, 50)]) == [3]   # gone too long: a new face


def test_a_faces_measured_side_is_the_median_of_its_last_searches():
    tracker = FaceTracker()
    assert tracker.update([Box(100, 100, 130, 130)]) == [1]
    tracker.update([Box(102, 100, 140, 140)])
    tracker.update([Box(110, 110, 87, 87)])  # one search's box: half the face
    assert tracker.measured_side(1) == 130  # the face's looks still accept its own size
    tracker.update([Box(100, 100, 120, 120)], searched=0)  # a look near it: not a measure
    assert tracker.measured_side(1) == 130
    tracker.update([Box(100, 100, 90, 90)])
    tracker.update([Box(100, 100, 90, 90)])
    assert tracker.measured_side(1) == 90  # a face that shrank for good: its new size
    assert tracker.measured_side(2) is None


def test_a_face_the_full_search_misses_is_found_by_a_second_look_near_its_last_place():
    from skimage import data

    cropper = FaceCropper()
    photo = data.astronaut()
    [box] = [b for b in detect_faces(photo)]
    again = cropper.search_near(photo, Box(box.x + 8, box.y - 6, box.w, box.h))
    assert again is not None and abs(again.x - box.x) < 0.1 * box.w
    blank = np.full_like(photo, 128)
    assert cropper.search_near(blank, box) is None            # the face has gone
    # only a box of about the size the last search measured is the face: a looser one (the
    # hair and shoulders around it) would be looked around next, swelling frame by frame
    assert cropper.search_near(photo, box, measured=box.side / 1.5) is None
    assert cropper.search_near(photo, box, measured=box.side * 1.5) is None
    assert cropper.search_near(photo, box, measured=box.side * 1.1) is not None


def test_a_face_only_mtcnn_sees_is_followed_by_mtcnn_near_its_last_place(datasets_dir):
    from gimefive_tf.data import load_arrays, read_dataset, stratified_split

    _, validation = stratified_split(read_dataset(datasets_dir / "RAF-DB"), 0.1, seed=0)
    faces, _ = load_arrays(validation.subset([870]), 64)  # a grimacing, grotesque face
    backdrop = scenes.background(np.random.default_rng(0))
    picture = scenes.compose(faces[0], backdrop, 160, 320, 240).picture
    [face] = [box for box in detect_faces(picture) if len(box.landmarks) == 5]  # MTCNN's own
    last = dataclasses.replace(face, x=face.x + 4, y=face.y + 3)  # where it was a frame ago
    assert FaceCropper(second_opinions=False).search_near(picture, last) is None  # unseen
    again = FaceCropper().search_near(picture, last)
    assert again is not None and iou(again, face) > 0.8 and len(again.landmarks) == 5
    assert again.eyes is None  # its own eyes are ONet's: no closer look's shift on top of them
    looked_at = dataclasses.replace(last, eyes=tuple((x + 9, y) for x, y in last.landmarks[:2]))
    assert FaceCropper().search_near(picture, looked_at).eyes is None
    assert FaceCropper().search_near(picture, last, measured=face.side / 1.5) is None  # too big
    assert FaceCropper().search_near(np.full_like(picture, 128), last) is None


def test_a_box_is_the_same_face_only_about_its_size_and_over_it():
    last = Box(100, 100, 120, 120)
    assert same_place(Box(110, 95, 130, 130), last)
    assert not same_place(Box(60, 60, 200, 200), last)       # the hair and shoulders around it
    assert not same_place(Box(130, 130, 80, 80), last)       # an eye and a nose
    assert not same_place(Box(300, 100, 120, 120), last)     # the face beside it
    assert same_place(Box(60, 60, 200, 200), last, side=180)  # as its side was measured


class CallCounter(keras.layers.Layer):
    """Counts the forward passes that run through it (also inside compiled graphs)."""

    def build(self, input_shape):
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                     name="calls")

    def call(self, inputs):
        self.calls.assign(self.calls + 1)
        return inputs


def counting_model():
    from gimefive_tf.models import create_model

    base = create_model("gimefive", base_filters=8)
    inputs = keras.Input((64, 64, 3))
    x = CallCounter(name="counter")(inputs)
    for layer in base.layers[1:]:                 # a chain: the same layers, counted first
        x = layer(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize("explain", [None, "gradcam"])
def test_probabilities_and_heatmaps_come_from_one_forward_pass_per_batch(explain):
    pipeline = FacePipeline(counting_model(), explain=explain, batch_size=16)
    crops = np.random.default_rng(0).integers(0, 256, (40, 64, 64, 3), dtype=np.uint8)
    counter = (pipeline._explainer.model if explain else pipeline.model).get_layer("counter")
    before = float(counter.calls.numpy())
    probabilities, heatmaps, targets = pipeline.classify(crops)
    assert float(counter.calls.numpy()) - before == 3              # 40 faces, batches of 16
    assert probabilities.shape == (40, 6)
    np.testing.assert_allclose(probabilities.sum(1), 1, atol=1e-5)
    if explain:
        assert heatmaps.shape == (40, 64, 64) and (targets == probabilities.argmax(1)).all()


def test_face_free_pictures_give_no_face():
    rng = np.random.default_rng(3)
    pictures = [scenes.background(rng) for _ in range(12)] + [
        np.zeros((480, 640, 3), np.uint8), np.full((30, 40, 3), 200, np.uint8)]
    assert all(detect_faces(picture) == [] for picture in pictures)
    from skimage import data

    [record] = analyze(data.chelsea())               # a cat: no face, said so
    assert record["emotion"] is None and record["reason"] == NO_FACE


def test_astronaut_at_every_size_is_one_happy_face():
    from skimage import data

    pipeline = FacePipeline()
    photo = data.astronaut()
    for side in (512, 2048, 3000):
        picture = cv2.resize(photo, (side, side), interpolation=cv2.INTER_CUBIC)
        results = pipeline(picture)
        assert [r.emotion for r in results] == ["happiness"], side
        x, y, w, h = np.array(results[0].box) * 512 / side
        assert 150 < x + w / 2 < 260 and 60 < y + h / 2 < 180   # her face, not the suit


@pytest.mark.data
def test_a_closer_look_puts_the_eyes_nearer_the_training_faces_frame(datasets_dir):
    faces, _ = validation_faces(datasets_dir, 40)
    cropper, phone = FaceCropper(), FaceCropper(second_opinions=False)
    rng = np.random.default_rng(5)
    errors = {"detector": [], "closer look": []}
    for face in faces:
        scene = scenes.random_scene(face, rng)
        box = scenes.matching_face([box for box, _, _ in cropper(scene.picture)], scene)
        assert all(found.eyes is None for found, _, _ in phone(scene.picture))  # no MTCNN
        if box is None:
            continue
        assert box.eyes is not None
        for name, eyes in (("detector", None), ("closer look", box.eyes)):
            corners = crop_corners(frame_matrix(dataclasses.replace(box, eyes=eyes),
                                                cropper.framing, "eyes"))
            side = np.linalg.norm(corners[1] - corners[0])
            errors[name].append((abs(np.log(side / scene.side)),
                                 np.hypot(*(corners.mean(0) - (scene.cx, scene.cy))) / scene.side))
    assert len(errors["detector"]) >= 36
    detector, closer = (np.mean(errors[name], axis=0) for name in errors)
    assert closer[1] < 0.8 * detector[1] and closer[0] <= detector[0]  # centre; size no worse


@pytest.mark.data
def test_a_face_pasted_at_a_known_place_is_found_framed_and_classified_like_its_crop(
        datasets_dir):
    faces, _ = validation_faces(datasets_dir, 60)
    pipeline = FacePipeline()
    aligned = pipeline.classify(faces)[0]
    confident = np.flatnonzero(aligned.max(1) > 0.85)[:6]
    assert len(confident) >= 4
    rng = np.random.default_rng(5)
    found = 0
    for index in confident:
        scene = scenes.compose(faces[index], scenes.background(rng), 150, 300, 220,
                               context="replicate")
        [result] = pipeline(scene.picture)
        if result.box is None:          # the detector finds ~95% of such faces, not all
            continue
        found += 1
        cx, cy = result.box[0] + result.box[2] / 2, result.box[1] + result.box[3] / 2
        assert abs(cx - 300) < 0.25 * 150 and abs(cy - 220) < 0.3 * 150
        corners = result.corners
        assert abs(np.linalg.norm(corners[1] - corners[0]) - 150) < 0.2 * 150
        assert result.emotion == EMOTION_NAMES[int(aligned[index].argmax())]
    assert found >= len(confident) - 1


EMOTION_NAMES = __import__("gimefive_tf").EMOTIONS


@pytest.mark.data
def test_two_faces_give_two_records_in_python_and_on_the_command_line(datasets_dir, tmp_path,
                                                                       capsys):
    from gimefive_tf.predict import main as predict_main

    faces, _ = validation_faces(datasets_dir, 8)
    rng = np.random.default_rng(2)
    picture = scenes.compose(faces[0], scenes.background(rng), 150, 170, 240,
                             context="replicate").picture
    picture = scenes.compose(faces[1], picture, 150, 470, 240, context="replicate").picture
    records = analyze(picture, explain="gradcam")
    assert len(records) == 2 and all(r["heatmap"].shape == (64, 64) for r in records)
    assert sorted(r["box"][0] < 320 for r in records) == [False, True]
    frame = to_frame(records)
    assert list(frame.columns[:7]) == ["input", "face", "x", "y", "w", "h", "emotion"]
    assert len(frame) == 2 and np.allclose(frame[list(EMOTION_NAMES)].sum(axis=1), 1, atol=1e-3)
    cv2.imwrite(str(tmp_path / "two.png"), picture[..., ::-1])
    assert predict_main([str(tmp_path / "two.png"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["face"] for r in rows] == [0, 1]
    assert {tuple(r) for r in (row["box"] for row in rows)} == {tuple(r["box"]) for r in records}


def test_mirror_averaging_decides_on_both_views_in_one_pass():
    """A face cut from a picture is decided with its mirror image (mean probabilities); the
    Grad-CAM map explains that decision; aligned crops (--crop none) are left as they are."""
    model = counting_model()
    crops = np.random.default_rng(1).integers(0, 256, (10, 64, 64, 3), dtype=np.uint8)
    plain = FacePipeline(model, crop="none")
    assert plain.mirror is False
    one = plain.classify(crops)[0]
    other = plain.classify(crops[:, :, ::-1])[0]
    for explain in (None, "gradcam"):
        pipeline = FacePipeline(model, explain=explain, batch_size=16)
        assert pipeline.mirror is True
        counter = (pipeline._explainer.model if explain else pipeline.model).get_layer("counter")
        before = float(counter.calls.numpy())
        probabilities, heatmaps, targets = pipeline.classify(crops)
        assert float(counter.calls.numpy()) - before == 1  # both views, one forward pass
        np.testing.assert_allclose(probabilities, (one + other) / 2, atol=1e-5)
        if explain:
            assert heatmaps.shape == (10, 64, 64)
            assert (targets == probabilities.argmax(1)).all()  # the averaged decision


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_a_box_found_in_a_turned_view_lands_on_the_same_pixels_and_is_cropped_upright(turns):
    from gimefive_tf.faces import frame_matrix, warp_face
    from gimefive_tf.faces.search import unturned

    noise = np.random.default_rng(turns).integers(0, 255, (90, 120, 3)).astype(np.uint8)
    picture = cv2.GaussianBlur(noise, (0, 0), 3)  # smooth: sub-pixel sampling differs little
    view = np.rot90(picture, turns)  # the picture as the turned search sees it
    found = Box(20, 30, 40, 40, 0.9, ((25.5, 35.5), (50.5, 40.5)))
    box = unturned(found, turns, picture.shape)
    assert box.angle == {1: -90, 2: 180, 3: 90}[turns]
    region = picture[box.y:box.y + box.h, box.x:box.x + box.w]
    np.testing.assert_array_equal(np.rot90(region, turns), view[30:70, 20:60])
    for (vx, vy), (x, y) in zip(found.landmarks, box.landmarks):  # the same pixel
        assert (view[int(vy), int(vx)] == picture[int(y), int(x)]).all()
    # the "box" framing turns it back: the crop equals the view's upright crop
    upright = warp_face(np.ascontiguousarray(view), frame_matrix(found, Framing(), "box"))
    crop = warp_face(picture, frame_matrix(box, Framing(), "box"))
    assert np.abs(crop.astype(int) - upright).mean() < 3  # turned the other way: 7-8
