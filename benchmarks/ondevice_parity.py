"""The on-device reference pipeline (`gimefive_tf.ondevice`, LiteRT + numpy + Pillow, reading
only the bundle) against the library's face pipeline, on the same pictures in one run.

Pictures: faces_in_scenes.py's pasted validation faces (JPEG 75) with face-free pictures, and
the real photographs of ../shared/photos. Against two library pipelines: the default (BlazeFace
with MTCNN's second opinions, the full-range look and MTCNN's fallback: what a desktop runs)
and the phone's search (`second_opinions=False`: the specification the bundle carries). For
each it prints as JSON: pictures whose faces are the same (as many, each matched by IoU >= 0.5),
faces matched, the same emotion on matched faces, and per-picture latency of both; on pasted
pictures also what each finds of the true faces and its accuracy over all (what leaving MTCNN
out costs); on photos the faces_in_photos counts.

    python -m gimefive_tf.export --out export --formats mobile
    python benchmarks/ondevice_parity.py --bundle export/mobile
"""

import argparse
import json
import pathlib
import sys
import time

import numpy as np

from faces_in_photos import PHOTOS, count_figures, is_portrait, read_photos
from faces_in_scenes import validation_faces
from gimefive_tf.analyze import FacePipeline
from gimefive_tf.faces import Box
from gimefive_tf.labels import EMOTIONS
from gimefive_tf.ondevice import OnDevicePipeline
from gimefive_tf.ondevice import read_picture as read_on_device
from gimefive_tf.scenes import background, compressed, matching_face, random_scene

DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "RAF-DB"


def as_box(record):
    return Box(*record["box"])


def faces_of(records):
    return [r for r in records if r.get("box") is not None]


def matched(reference, other, min_iou=0.5):
    """[(reference record, other record)] paired greedily by IoU >= min_iou, best first."""
    from gimefive_tf.faces import iou

    pairs = sorted(((iou(as_box(a), as_box(b)), i, j) for i, a in enumerate(reference)
                    for j, b in enumerate(other)), reverse=True)
    used_a, used_b, found = set(), set(), []
    for overlap, i, j in pairs:
        if overlap >= min_iou and i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            found.append((reference[i], other[j]))
    return found


def agreement(reference, other):
    """Same faces and same emotions of two pipelines' records per picture."""
    same_pictures = faces = faces_matched = same_emotion = 0
    for a, b in zip(reference, other):
        a, b = faces_of(a), faces_of(b)
        pairs = matched(a, b)
        same_pictures += len(pairs) == len(a) == len(b)
        faces += len(a) + len(b) - len(pairs)
        faces_matched += len(pairs)
        same_emotion += sum(x["emotion"] == y["emotion"] for x, y in pairs)
    return {"pictures": len(reference), "same_faces_pictures": same_pictures / len(reference),
            "faces": faces, "faces_matched": faces_matched / max(1, faces),
            "same_emotion": same_emotion / max(1, faces_matched)}


def timed(function, pictures):
    """(records per picture, median seconds per picture)."""
    function(pictures[0])  # warm-up
    records, times = [], []
    for picture in pictures:
        started = time.perf_counter()
        records.append(function(picture))
        times.append(time.perf_counter() - started)
    return records, float(np.median(times))


def library_records(pipeline):
    return lambda picture: [r.to_dict() for r in pipeline.run([("picture", picture)])]


def truth_figures(records, scenes, labels, empty_records):
    """Found, accuracy over all pasted faces, and false faces on face-free pictures."""
    found = right = 0
    for scene_records, scene, label in zip(records, scenes, labels):
        faces = faces_of(scene_records)
        box = matching_face([as_box(r) for r in faces], scene)
        if box is not None:
            found += 1
            record = next(r for r in faces if as_box(r) == box)
            right += record["emotion"] == EMOTIONS[label]
    false = sum(len(faces_of(r)) for r in empty_records)
    return {"found": found / len(scenes), "accuracy_all": right / len(scenes),
            "false_faces": false / len(empty_records)}


def picture_arguments(doc, faces, what):
    """The arguments of the on-device benchmarks: where the pictures come from, and --out."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--data", default=str(DATA), help="RAF-DB (validation faces)")
    parser.add_argument("--photos", default=str(PHOTOS))
    parser.add_argument("--faces", type=int, default=faces, help=f"{what} ({faces})")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="also write the JSON here")
    return parser


def main(argv=None):
    parser = picture_arguments(__doc__, faces=300, what="pasted faces")
    parser.add_argument("--bundle", required=True, help="the folder export --formats mobile wrote")
    parser.add_argument("--empty", type=int, default=100, help="face-free pictures (100)")
    args = parser.parse_args(argv)

    on_device = OnDevicePipeline(args.bundle)
    pipelines = {"library_default": FacePipeline(),
                 "library_phone_search": FacePipeline(second_opinions=False)}
    report = {"bundle": args.bundle, "seed": args.seed}

    faces, labels = validation_faces(args.data, args.faces, args.seed)
    rng = np.random.default_rng(args.seed)
    scenes = [random_scene(face, rng) for face in faces]
    pictures = [compressed(scene.picture) for scene in scenes]
    empty = [compressed(background(rng)) for _ in range(args.empty)]
    device_records, device_time = timed(lambda p: on_device.records(p), pictures + empty)
    pasted = {"pictures": len(pictures), "face_free": len(empty),
              "ondevice": {"seconds_per_picture": round(device_time, 4),
                           **truth_figures(device_records[:len(pictures)], scenes, labels,
                                           device_records[len(pictures):])}}
    for name, pipeline in pipelines.items():
        records, seconds = timed(library_records(pipeline), pictures + empty)
        pasted[name] = {"seconds_per_picture": round(seconds, 4),
                        **truth_figures(records[:len(pictures)], scenes, labels,
                                        records[len(pictures):]),
                        "ondevice_against_it": agreement(records, device_records)}
    report["pasted"] = pasted
    print(json.dumps({"pasted": pasted}, indent=2), file=sys.stderr)

    photos = read_photos(args.photos)
    files = [pathlib.Path(args.photos) / name for name, *_ in photos]
    device_records, device_time = timed(lambda path: on_device.records(read_on_device(path)),
                                        files)
    real = {"photos": len(photos), "portraits": sum(is_portrait(f, m) for _, _, f, m in photos),
            "ondevice": {"seconds_per_picture": round(device_time, 4),
                         **count_figures(photos, [faces_of(r) for r in device_records])}}
    for name, pipeline in pipelines.items():
        records, seconds = timed(
            lambda path: [r.to_dict() for r in pipeline.run([(str(path), None)])], files)
        real[name] = {"seconds_per_picture": round(seconds, 4),
                      **count_figures(photos, [faces_of(r) for r in records]),
                      "ondevice_against_it": agreement(records, device_records)}
    report["photos"] = real
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
