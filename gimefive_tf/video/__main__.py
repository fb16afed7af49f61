"""`python -m gimefive_tf.video INPUT | --camera N`: faces -> emotions -> heatmaps, frame by frame.

Every frame goes through the library's face pipeline (gimefive_tf.analyze: detect, frame like
the training faces, classify and explain in one pass), with tracking across frames. Writes the
annotated video (same size and fps: the outline of the crop the model saw, the dominant emotion
above it, the six scores beside it, the heatmap blended on the crop), a per-frame CSV
`frame,time_s,face_id,x,y,w,h,tracked,emotion,happiness,...,fear` (tracked=1: found by looking
near the face's last place rather than by a search of the whole frame), a plot of the scores
over time per face, and prints a summary. Ctrl-C stops cleanly: everything written so far stays playable.
"""

from gimefive_tf.cli import (
    ArgumentParser, add_model_argument, command, format_table, positive_int, print_json,
    progress)
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.faces import DEFAULT_DETECTOR, DETECTORS, FRAMINGS
from gimefive_tf.faces.tracking import SMOOTH_FRAMES
from gimefive_tf.video import EXPLAIN_CHOICES, annotate_video


def require_gui():
    """GiMeFiveError unless OpenCV can open a window (opencv-python-headless cannot)."""
    import cv2

    try:
        cv2.namedWindow("gimefive")
        cv2.destroyWindow("gimefive")
    except cv2.error:
        raise GiMeFiveError("--show needs OpenCV with a GUI (pip install opencv-python) and a "
                            "display; write --out annotated.mp4 instead") from None


def build_parser():
    parser = ArgumentParser(prog="gimefive-video", description=__doc__.split("\n\n")[0])
    parser.add_argument("input", nargs="?", help="a video file OpenCV reads")
    parser.add_argument("--camera", type=int, help="read camera N instead of a file")
    add_model_argument(parser)
    parser.add_argument("--out", help="annotated video to write (.mp4)")
    parser.add_argument("--csv", help="per-frame CSV to write (default: beside --out, or none)")
    parser.add_argument("--plot", help="scores-over-time PNG (default: beside the CSV)")
    from gimefive_tf.explain.methods import DEFAULT_METHOD

    parser.add_argument("--explain", choices=EXPLAIN_CHOICES, default=DEFAULT_METHOD,
                        help=f"heatmap blended on each face (default {DEFAULT_METHOD}, the "
                             "library's default explanation) or none")
    parser.add_argument("--every", type=positive_int, default=1, help="analyse every K-th frame (1)")
    parser.add_argument("--search-every", type=positive_int, default=5, metavar="K",
                        help="search the whole frame every K analysed frames, follow known "
                             "faces near their last place in between (5; 1: search every frame)")
    parser.add_argument("--smooth", type=positive_int, default=SMOOTH_FRAMES,
                        help="average each face's scores over its last W analysed frames (5)")
    parser.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR,
                        help=f"face detector ({DEFAULT_DETECTOR})")
    parser.add_argument("--framing", choices=FRAMINGS,
                        help="how faces are cut: the calibrated box, the eyes or all landmarks "
                             "aligned to the training faces (default: the calibration's best)")
    parser.add_argument("--show", action="store_true", help="show a live window (needs a GUI)")
    parser.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing --out, --csv and --plot files")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.show:
        require_gui()
    summary = annotate_video(args.input, args.out, args.csv, args.plot, args.model,
                             args.detector, args.framing, args.explain, args.smooth,
                             args.search_every, args.every, args.show, args.max_frames,
                             args.overwrite, args.camera, progress=progress)
    name = summary["input"]
    if args.json:
        print_json(summary)
    elif not summary["faces"]:
        print(f"{name}: {summary['frames']} frames, no faces found")
    else:
        print(f"{name}: {summary['frames']} frames, {summary['faces']} face(s) in "
              f"{summary['frames_with_faces']} frames, {summary['processing_fps']} frames/s"
              + (" (interrupted)" if summary["interrupted"] else ""))
        print(format_table([{"emotion": e, "share": f"{s:.2f}"} for e, s in
                            summary["emotion_share"].items()],
                           [("emotion", "emotion"), ("share", "share of face-frames")]))
    return 0


entry_point = command(main)


if __name__ == "__main__":
    entry_point()
