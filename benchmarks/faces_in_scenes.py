"""The real path, measured: faces from the validation split shown as a camera sees them.

Validation faces (never trained on: the shipped model's seeded 10% split) are placed with
context at random sizes (90-240 px), places, rotations (+-15 degrees), backgrounds and lighting
in 640x480 pictures (gimefive_tf.scenes), plus face-free pictures of the same backgrounds, all
JPEG-compressed at ordinary quality (75) as a web upload is (--quality 0: not compressed).
For every detector and framing it prints as JSON: faces found, accuracy over all pictures and
over found faces, the aligned-crop accuracy of the same faces, false faces on face-free
pictures, and end-to-end images/s of the face pipeline. With --video it also writes a video of
two-second segments (one face each, one with two faces, one empty), H.264 at x264's ordinary
quality (CRF 23) as phones and web uploads are, and runs the video path: face-frame recall,
segment accuracy, faces in the empty segment, fps with and without Grad-CAM, and the segment
accuracy of crops of the same faces cut from the same decoded frames at their true place.

    python benchmarks/faces_in_scenes.py --data ../shared/datasets/RAF-DB --video
"""

import argparse
import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

from gimefive_tf.analyze import FacePipeline
from gimefive_tf.data import load_arrays, read_dataset, stratified_split
from gimefive_tf.inference import Predictor
from gimefive_tf.faces import DETECTORS, FRAMINGS, Box, Framing, detect_faces, frame_face, iou
from gimefive_tf.scenes import background, compose, compressed, matching_face, random_scene

REPO = pathlib.Path(__file__).resolve().parents[1]
PLACED_IOU = 0.4  # a video row on the face (its box against the face's true square)
LEGACY = "margin0.15"  # the framing before calibration: the box grown by 15% per side


def validation_faces(data, count, seed):
    table = read_dataset(data)
    _, validation = stratified_split(table, 0.1, seed=0)
    chosen = np.sort(np.random.default_rng(seed).permutation(len(validation))[:count])
    return load_arrays(validation.subset(chosen), 64)


def photo_figures(pipeline, faces, labels, scenes, empty, framings):
    """Figures of one detector over the scenes, for each framing."""
    detector = pipeline.detector
    started = time.perf_counter()
    boxes = [detect_faces(scene.picture, detector) for scene in scenes]
    detect_s = (time.perf_counter() - started) / len(scenes)
    found = [matching_face(b, scene) for b, scene in zip(boxes, scenes)]
    found = [box and pipeline.cropper.refined(scene.picture, box)  # its eyes, as the pipeline's
             for box, scene in zip(found, scenes)]
    kept = np.array([i for i, box in enumerate(found) if box is not None], int)
    extra = sum(len(b) - (box is not None) for b, box in zip(boxes, found))
    false_pictures = sum(bool(detect_faces(picture, detector)) for picture in empty)
    aligned = Predictor(pipeline.model)(faces).argmax(1) == labels  # the model, plain
    figures = {"detector": detector, "pictures": len(scenes),
               "found": round(len(kept) / len(scenes), 4),
               "aligned_accuracy": round(float(aligned.mean()), 4),
               "aligned_accuracy_on_found": round(float(aligned[kept].mean()), 4) if len(kept)
               else None,
               "extra_boxes_on_face_pictures": int(extra),
               "face_free_pictures": len(empty),
               "false_face_rate": round(false_pictures / len(empty), 4) if empty else None,
               "detect_ms": round(1000 * detect_s, 1), "framings": {}}
    for how in framings:
        framing = Framing(scale=1.3) if how == LEGACY else pipeline.framing
        crops = [frame_face(scenes[i].picture, found[i], framing,
                            "box" if how == LEGACY else how)[0] for i in kept]
        correct = (pipeline.classify(np.stack(crops))[0].argmax(1) == labels[kept]) if len(kept) \
            else np.zeros(0, bool)
        figures["framings"][how] = {
            "accuracy_all": round(float(correct.sum() / len(scenes)), 4),
            "accuracy_found": round(float(correct.mean()), 4) if len(kept) else None}
    started = time.perf_counter()
    pipeline.run([(str(i), scene.picture) for i, scene in enumerate(scenes[:100])])
    figures["pipeline_images_per_s"] = round(min(100, len(scenes)) /
                                             (time.perf_counter() - started), 1)
    figures["default_framing"] = pipeline.how
    return figures


def make_video(faces, labels, path, rng, seconds=2.0, fps=25, size=(640, 480), crf=23):
    """A video of one face per segment (drifting and zooming a little), then a segment with two
    faces and an empty one, H.264 at `crf` (x264's default, 23: ordinary quality, as phones and
    web uploads compress). Returns the segments: (first frame, last frame, labels, the true
    Scene of each frame's face for one-face segments)."""
    import av

    width, height = size
    frames_per = int(seconds * fps)
    plan = [[i] for i in range(len(faces))] + [[0, 1], []]
    segments, frame = [], 0
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        for members in plan:
            backdrop = background(rng, width, height)
            starts = [(rng.uniform(120, 200), rng.uniform(180, 260 if len(members) < 2 else 180),
                       rng.uniform(height / 2 - 40, height / 2 + 40)) for _ in members]
            if len(members) == 2:
                starts = [(s, 170 + 300 * k, y) for k, (s, _, y) in enumerate(starts)]
            drift = [rng.uniform(-40, 40, 3) * (0.5, 1, 1) for _ in members]
            angle = [rng.uniform(-10, 10) for _ in members]
            truths = []
            for t in range(frames_per):
                picture = backdrop
                for index, (start, move, turn) in enumerate(zip(starts, drift, angle)):
                    side, cx, cy = np.add(start, move * t / frames_per)
                    scene = compose(faces[members[index]], picture, side, cx, cy, turn)
                    picture = scene.picture
                    truths.append(scene)
                for packet in stream.encode(av.VideoFrame.from_ndarray(
                        np.ascontiguousarray(picture), format="rgb24")):
                    container.mux(packet)
            segments.append((frame, frame + frames_per - 1, [int(labels[i]) for i in members],
                             truths if len(members) == 1 else None))
            frame += frames_per
        for packet in stream.encode():
            container.mux(packet)
    return segments


def scored_segments(segments):
    """make_video's segments as video_figures scores them (and --score-video reads them): each
    one-face segment's true squares instead of its scenes, in JSON-ready numbers."""
    return [(first, last, labels, scenes and [[float(v) for v in scene.square] for scene in scenes])
            for first, last, labels, scenes in segments]


def crop_figures(pipeline, path, segments):
    """Segment accuracy of the faces cut from the decoded frames at their true place (the
    aligned frame, turned upright, lit like the training faces): what the model gets right on
    these frames when finding and framing lose nothing."""
    from gimefive_tf.data.frames import iter_frames, open_video

    true_frame = dataclasses.replace(pipeline.framing, scale=1.0, dx=0.0, dy=0.0)  # lit alike
    truths = {first + t: scene for first, _, _, scenes in segments if scenes
              for t, scene in enumerate(scenes)}
    crops, indices = [], []
    for index, frame in iter_frames(open_video(path)):
        if index in truths:
            scene = truths[index]
            box = square_box(scene.square, scene.angle)  # turned back upright by the crop
            crops.append(frame_face(frame, box, true_frame)[0])
            indices.append(index)
    emotions = dict(zip(indices, pipeline.classify_all(np.stack(crops)).argmax(1)))
    correct = 0
    for first, last, labels, scenes in segments:
        if scenes:
            votes = [emotions[f] for f in range(first, last + 1) if f in emotions]
            correct += bool(votes) and np.bincount(votes).argmax() == labels[0]
    return round(correct / sum(1 for *_, scenes in segments if scenes), 4)


def square_box(square, angle=0.0):
    """A scene's true square (x0, y0, side) as a Box."""
    x0, y0, side = (int(round(value)) for value in square)
    return Box(x0, y0, side, side, angle=angle)


def video_figures(model_path, detector, path, segments, explain):
    """The video path's figures: fps, face-frame recall (a row in a frame with a face; placed:
    a row on the face's true square, IoU >= PLACED_IOU, where one-face segments know it),
    segment accuracy (the majority emotion of each segment's longest track) and the two-face
    and empty segments' faces per frame. segments: (first frame, last frame, labels, each
    frame's true square or None), as `scored_segments` gives them."""
    from gimefive_tf.video import VideoAnalyzer, annotate
    from gimefive_tf.data.frames import open_video

    analyzer = VideoAnalyzer(FacePipeline(model_path, detector, explain=explain, batch_size=4,
                                          mirror=False))  # as the video command
    rows, frames, _, fps = annotate(open_video(path), analyzer)
    by_frame = {}
    for row in rows:
        by_frame.setdefault(row["frame"], []).append(row)
    face_frames = hits = correct_segments = single_segments = placed = truths = 0
    for first, last, labels, squares in segments:
        for t, square in enumerate(squares or ()):  # a row on the face itself, not its hair
            truth = square_box(square)               # or shoulders around it
            truths += 1
            placed += any(iou(Box(row["x"], row["y"], row["w"], row["h"]), truth) >= PLACED_IOU
                          for row in by_frame.get(first + t, []))
        rows_here = [row for f in range(first, last + 1) for row in by_frame.get(f, [])]
        if len(labels) == 1:
            single_segments += 1
            if rows_here:  # the segment's face: its longest track, by the majority of frames
                main = np.bincount([row["face_id"] for row in rows_here]).argmax()
                emotions = [row["emotion_id"] for row in rows_here if row["face_id"] == main]
                correct_segments += np.bincount(emotions).argmax() == labels[0]
        face_frames += (last - first + 1) * bool(labels)
        hits += sum(min(len(by_frame.get(f, [])), len(labels)) / max(1, len(labels))
                    for f in range(first, last + 1) if labels)
    first, last, *_ = segments[-1]
    two_first, two_last, *_ = segments[-2]
    return {"explain": explain or "none", "frames": frames, "fps": round(fps, 1),
            "face_frame_recall": round(hits / face_frames, 4),
            "face_frame_recall_placed": round(placed / truths, 4) if truths else None,
            "segment_accuracy": round(correct_segments / single_segments, 4),
            "segments": single_segments,
            "face_rows_per_face_frame": round(len([r for r in rows if r["frame"] <
                                                   segments[-1][0]]) / face_frames, 3),
            "two_face_segment_mean_faces": round(np.mean(
                [len(by_frame.get(f, [])) for f in range(two_first, two_last + 1)]), 2),
            "faces_in_empty_segment": sum(len(by_frame.get(f, [])) for f in
                                          range(first, last + 1))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/datasets/RAF-DB")
    parser.add_argument("--model", help="a .keras model (default: the shipped model)")
    parser.add_argument("--faces", type=int, default=300, help="validation faces (300)")
    parser.add_argument("--empty", type=int, default=200, help="face-free pictures (200)")
    parser.add_argument("--detectors", default=",".join(DETECTORS))
    parser.add_argument("--framings", default=",".join((LEGACY,) + FRAMINGS))
    parser.add_argument("--video", action="store_true", help="also build and run a video")
    parser.add_argument("--segments", type=int, default=26, help="video segments (26)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quality", type=int, default=75,
                        help="JPEG quality of the pictures (75; 0: not compressed)")
    parser.add_argument("--before", help="a checkout whose video path to run on the same video "
                                         "as well (fps before and after, one run)")
    parser.add_argument("--score-video", nargs=2, metavar=("VIDEO", "SEGMENTS_JSON"),
                        help=argparse.SUPPRESS)  # the --before subprocess
    args = parser.parse_args(argv)
    if args.score_video:
        path, segments = args.score_video
        segments = json.loads(pathlib.Path(segments).read_text())
        print(json.dumps(video_figures(args.model, "blazeface", path, segments, None)))
        return
    faces, labels = validation_faces(args.data, args.faces, args.seed)
    labels = np.asarray(labels)
    rng = np.random.default_rng(args.seed)
    scenes = [random_scene(face, rng) for face in faces]
    scenes = [dataclasses.replace(scene, picture=compressed(scene.picture, args.quality))
              for scene in scenes]
    empty = [compressed(background(rng), args.quality) for _ in range(args.empty)]
    framings = args.framings.split(",")
    report = {"faces": len(faces), "seed": args.seed, "jpeg_quality": args.quality, "photos": []}
    for detector in args.detectors.split(","):
        pipeline = FacePipeline(args.model, detector)
        report["photos"].append(photo_figures(pipeline, faces, labels, scenes, empty, framings))
        print(json.dumps(report["photos"][-1]), file=sys.stderr, flush=True)
    if args.video:
        detector = args.detectors.split(",")[0]
        chosen = rng.permutation(len(faces))[:args.segments]
        with tempfile.TemporaryDirectory() as folder:
            path = pathlib.Path(folder) / "segments.mp4"
            segments = make_video(faces[chosen], labels[chosen], path, rng)
            scored = scored_segments(segments)
            report["video"] = [video_figures(args.model, detector, path, scored, explain)
                               for explain in ("gradcam", None)]
            report["video_crops_segment_accuracy"] = crop_figures(
                FacePipeline(args.model, detector, mirror=False), path, segments)
            if args.before:
                written = pathlib.Path(folder) / "segments.json"
                written.write_text(json.dumps(scored))
                for name, repo in (("video_before", args.before), ("video_after_fresh", REPO)):
                    report[name] = json.loads(subprocess.run(  # each in a fresh process, alike
                        [sys.executable, __file__, "--score-video", str(path), str(written)]
                        + (["--model", args.model] if args.model else []),
                        env={**os.environ, "PYTHONPATH": str(pathlib.Path(repo).resolve())},
                        capture_output=True, text=True, check=True).stdout)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
