"""Faces in real photographs: the face path on pictures as people take them.

`../shared/photos` holds 65 real photographs (one-person portraits, a couple, a group selfie) and
`faces.csv`: how many faces a person counts in each (`faces`) and how many reported faces are
still right (`max_faces`: real faces in a blurred crowd behind, a face half cut by the edge).
A second box on one person (forehead, ear, chin with a hand) is a phantom face. For every
detector (blazeface is the default pipeline) it prints as JSON: portraits with exactly one
face, faces over the count, faces missed, each multi-face picture's count and pictures/s of
the whole face pipeline (detect, frame, classify).

--tilt: the portraits turned in the picture plane by +-15, 30 and 45 degrees on a canvas grown
so nothing is cut: the same single face and the same emotion as upright, per angle.
--turned: the portraits stored turned by 90, 180 and 270 degrees (no EXIF orientation): one
face, its box on the upright face's place and the same emotion; and what a face-free picture
pays for the turned search. --before REPO: pictures/s of the default measured again, in the same
run, with the gimefive_tf of another checkout (`git worktree add /tmp/before REV`), on these
photos and on pasted pictures (faces_in_scenes.py's, JPEG-compressed).

    python benchmarks/faces_in_photos.py --tilt --turned --before /tmp/before
"""

import argparse
import csv
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
PHOTOS = REPO.parent / "shared" / "photos"
DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "RAF-DB"
ANGLES = (15, -15, 30, -30, 45, -45)


def read_photos(folder):
    """[(file, RGB uint8, faces, max_faces)] of the photos that faces.csv lists."""
    try:
        from gimefive_tf.pictures import read_picture
    except ImportError:  # a checkout from before gimefive_tf.pictures (--before)
        from gimefive_tf.analyze import read_image as read_picture

    with open(pathlib.Path(folder) / "faces.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [(row["file"], read_picture(pathlib.Path(folder) / row["file"]), int(row["faces"]),
             int(row["max_faces"])) for row in rows]


def is_portrait(faces, max_faces):
    return faces == max_faces == 1


def timed_run(pipeline, pictures):
    """(records per picture, pictures/s): the whole pipeline, one picture at a time."""
    pipeline.run([("warm-up", pictures[0])])
    started = time.perf_counter()
    records = [[r for r in pipeline.run([(str(i), picture)]) if r.box is not None]
               for i, picture in enumerate(pictures)]
    return records, len(pictures) / (time.perf_counter() - started)


def count_figures(photos, records):
    """Portraits with exactly one face, faces over the count, faces missed, multi-face counts."""
    counts = [len(found) for found in records]
    portraits = [n for (_, _, faces, most), n in zip(photos, counts) if is_portrait(faces, most)]
    return {"portraits": len(portraits), "portraits_one_face": sum(n == 1 for n in portraits),
            "portraits_with_extra_faces": [name for (name, _, faces, most), n in zip(photos, counts)
                                           if is_portrait(faces, most) and n > 1],
            "faces_over_count": sum(max(0, n - most) for (_, _, _, most), n in
                                    zip(photos, counts)),
            "pictures_over_count": [name for (name, _, _, most), n in zip(photos, counts)
                                    if n > most],
            "faces_missed": sum(max(0, faces - n) for (_, _, faces, _), n in zip(photos, counts)),
            "pictures_missing_faces": [name for (name, _, faces, _), n in zip(photos, counts)
                                       if n < faces],
            "multi_face_pictures": {name: {"found": n, "faces": faces} for (name, _, faces, _), n
                                    in zip(photos, counts) if faces > 1}}


def tilt_figures(pipeline, photos, upright):
    """Per angle: portraits turned in the picture plane giving the upright answer's single face
    and emotion, of the portraits whose upright picture gives one face."""
    from gimefive_tf.scenes import tilted

    cases = [(picture, found[0].emotion) for (_, picture, faces, most), found in
             zip(photos, upright) if is_portrait(faces, most) and len(found) == 1]
    figures = {}
    for angle in ANGLES:
        one = same = 0
        for picture, emotion in cases:
            found = [r for r in pipeline.run([("tilted", tilted(picture, angle))])
                     if r.box is not None]
            one += len(found) == 1
            same += len(found) == 1 and found[0].emotion == emotion
        figures[str(angle)] = {"cases": len(cases), "one_face": round(one / len(cases), 4),
                               "same_face_and_emotion": round(same / len(cases), 4)}
    return figures


def turned_figures(pipeline, photos, upright, empty):
    """Portraits stored turned by quarter turns: one face, reported on the upright face's place
    in the turned picture's pixels (IoU >= 0.5), the same emotion; and the face-free pictures'
    cost of the turned search (ms per picture, on and off)."""
    from gimefive_tf.analyze import FacePipeline
    from gimefive_tf.faces import Box, iou
    from gimefive_tf.faces.search import unturned

    cases = [(picture, found[0]) for (_, picture, faces, most), found in zip(photos, upright)
             if is_portrait(faces, most) and len(found) == 1]
    figures = {}
    for turns in (1, 2, 3):  # the picture as stored: np.rot90 of the upright one
        one = placed = same = 0
        for picture, face in cases:
            stored = np.ascontiguousarray(np.rot90(picture, turns))
            found = [r for r in pipeline.run([("turned", stored)]) if r.box is not None]
            # where the upright face lies in the stored picture: the upright picture is
            # np.rot90(stored, -turns), i.e. rot90 by 4 - turns of it
            expected = unturned(Box(*face.box), (4 - turns) % 4, stored.shape)
            one += len(found) == 1
            placed += len(found) == 1 and iou(Box(*found[0].box), expected) >= 0.5
            same += len(found) == 1 and found[0].emotion == face.emotion
        figures[f"{90 * turns}"] = {"cases": len(cases), "one_face": round(one / len(cases), 4),
                                    "box_in_place": round(placed / len(cases), 4),
                                    "same_emotion": round(same / len(cases), 4)}
    upright_only = FacePipeline(pipeline.model, turned=False)
    costs = {}
    for name, each in (("turned_search_on", pipeline), ("turned_search_off", upright_only)):
        each.run([("warm-up", empty[0])])
        started = time.perf_counter()
        for picture in empty:
            each.run([("empty", picture)])
        costs[name] = round(1000 * (time.perf_counter() - started) / len(empty), 1)
    figures["face_free_ms_per_picture"] = costs
    return figures


def pasted_pictures(count, seed=1):
    """`count` pictures of faces_in_scenes.py: validation faces placed in 640x480 pictures,
    JPEG-compressed at ordinary quality like a web upload."""
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from faces_in_scenes import validation_faces

    from gimefive_tf.scenes import compressed, random_scene

    faces, _ = validation_faces(str(DATA), count, seed)
    rng = np.random.default_rng(seed)
    return [compressed(random_scene(face, rng).picture) for face in faces]


def speed(photos_folder, pasted):
    """Pictures/s of the default pipeline on the photos and on `pasted` pasted pictures."""
    from gimefive_tf.analyze import FacePipeline

    pipeline = FacePipeline()
    pictures = [picture for _, picture, _, _ in read_photos(photos_folder)]
    figures = {"photos_per_s": round(timed_run(pipeline, pictures)[1], 2)}
    if pasted and DATA.is_dir():
        figures["pasted_pictures_per_s"] = round(timed_run(pipeline, pasted_pictures(pasted))[1], 2)
    return figures


def speed_of(repo, photos_folder, pasted):
    """speed() run by the gimefive_tf of another checkout, in a process of its own."""
    environment = {**os.environ, "PYTHONPATH": str(pathlib.Path(repo).resolve())}
    output = subprocess.run([sys.executable, __file__, "--photos", str(photos_folder),
                             "--speed-only", "--pasted", str(pasted)], env=environment,
                            capture_output=True, text=True, check=True).stdout
    return json.loads(output)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", default=str(PHOTOS), help="the photos folder (faces.csv)")
    parser.add_argument("--detectors", default="blazeface,mtcnn,haar")
    parser.add_argument("--tilt", action="store_true", help="also the tilted portraits")
    parser.add_argument("--turned", action="store_true", help="also the turned portraits")
    parser.add_argument("--before", help="a checkout whose default pipeline to time as well")
    parser.add_argument("--pasted", type=int, default=100,
                        help="pasted pictures timed with --before (100; 0: none)")
    parser.add_argument("--speed-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.speed_only:  # the --before subprocess
        print(json.dumps(speed(args.photos, args.pasted)))
        return
    from gimefive_tf.analyze import FacePipeline
    from gimefive_tf.scenes import background

    photos = read_photos(args.photos)
    report = {"photos": len(photos), "detectors": []}
    for detector in args.detectors.split(","):
        pipeline = FacePipeline(detector=detector)
        records, rate = timed_run(pipeline, [picture for _, picture, _, _ in photos])
        figures = {"detector": detector, **count_figures(photos, records),
                   "pictures_per_s": round(rate, 2)}
        report["detectors"].append(figures)
        print(json.dumps(figures), file=sys.stderr, flush=True)
        if detector == "blazeface" and args.tilt:
            report["tilt"] = tilt_figures(pipeline, photos, records)
            print(json.dumps(report["tilt"]), file=sys.stderr, flush=True)
        if detector == "blazeface" and args.turned:
            empty = [background(np.random.default_rng(seed)) for seed in range(30)]
            report["turned"] = turned_figures(pipeline, photos, records, empty)
            print(json.dumps(report["turned"]), file=sys.stderr, flush=True)
    if args.before:
        report["speed"] = {"before": speed_of(args.before, args.photos, args.pasted),  # each
                           "after": speed_of(REPO, args.photos, args.pasted)}  # fresh, alike
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
