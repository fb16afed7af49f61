"""`python -m gimefive_tf.video INPUT | --camera N`: faces -> emotions -> heatmaps, frame by frame.

Every frame goes through the library's face pipeline (gimefive_tf.analyze: detect, frame like
the training faces, classify and explain in one pass), with tracking across frames. Writes the
annotated video (same size and fps: the outline of the crop the model saw, the dominant emotion
above it, the six scores beside it, the heatmap blended on the crop), a per-frame CSV
`frame,time_s,face_id,x,y,w,h,tracked,emotion,happiness,...,fear` (tracked=1: found by looking
near the face's last place rather than by a search of the whole frame), a plot of the scores
over time per face, and prints a summary. Ctrl-C stops cleanly: everything written so far stays playable.
"""

import pathlib

from gimefive_tf.cli import (
    ArgumentParser, add_model_argument, command, format_table, positive_int, print_json,
    progress)
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.faces import DEFAULT_DETECTOR, DETECTORS, FRAMINGS, VIDEO_DETECTION_SIDE
from gimefive_tf.outputs import claim_file
from gimefive_tf.video import (EXPLAIN_CHOICES, VIDEO_SUFFIXES, VideoAnalyzer, annotate,
                               plot_timeline, summarize)


def require_gui():
    """GiMeFiveError unless OpenCV can open a window (opencv-python-headless cannot)."""
    import cv2

    try:
        cv2.namedWindow("gimefive")
        cv2.destroyWindow("gimefive")
    except cv2.error:
        raise GiMeFiveError("--show needs OpenCV with a GUI (pip install opencv-python) and a "
                            "display; write --out annotated.mp4 instead") from None


def open_source(source, camera=None):
    import cv2

    if camera is not None:
        from gimefive_tf.quiet import native_stderr_silenced

        with native_stderr_silenced():  # OpenCV's V4L2 warnings; the error line says it
            capture = cv2.VideoCapture(int(camera))
        if not capture.isOpened():
            raise GiMeFiveError(f"camera {camera} is not available")
        return capture, f"camera {camera}"
    from gimefive_tf.data.frames import open_video

    return open_video(source), str(source)


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
    parser.add_argument("--smooth", type=positive_int, default=5,
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
    if (args.input is None) == (args.camera is None):
        raise GiMeFiveError("pass a video file or --camera N (one of them)")
    csv_path = args.csv or (str(pathlib.Path(args.out).with_suffix(".csv")) if args.out else None)
    plot_path = args.plot or (str(pathlib.Path(csv_path).with_suffix(".png")) if csv_path
                              else None)
    if args.out and pathlib.Path(args.out).suffix.lower() not in VIDEO_SUFFIXES:
        raise GiMeFiveError(f"--out {args.out}: name a video file ({', '.join(VIDEO_SUFFIXES)})")
    for path, option in ((args.out, "--out"), (csv_path, "--csv"), (plot_path, "--plot")):
        if path:
            claim_file(path, args.overwrite, option)
    if args.show:
        require_gui()
    capture, name = open_source(args.input, args.camera)
    from gimefive_tf.analyze import FacePipeline

    pipeline = FacePipeline(args.model, args.detector, args.framing,
                            explain=None if args.explain == "none" else args.explain,
                            batch_size=4, max_side=VIDEO_DETECTION_SIDE,
                            mirror=False)  # frames are averaged over time (--smooth) instead
    analyzer = VideoAnalyzer(pipeline, args.smooth, args.search_every)
    import cv2

    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    bar = progress(None, "frames", total=total)
    rows, frames, interrupted, fps = annotate(capture, analyzer, args.out, csv_path, args.every,
                                              args.show, bar, args.max_frames)
    bar.close()
    if plot_path and rows:
        plot_timeline(rows, plot_path)
    summary = {"input": name, **summarize(rows, frames), "processing_fps": round(fps, 1),
               "interrupted": interrupted, "video": args.out, "csv": csv_path,
               "plot": plot_path if rows else None}
    if args.json:
        print_json(summary)
    elif not rows:
        print(f"{name}: {frames} frames, no faces found")
    else:
        print(f"{name}: {frames} frames, {summary['faces']} face(s) in "
              f"{summary['frames_with_faces']} frames, {summary['processing_fps']} frames/s"
              + (" (interrupted)" if interrupted else ""))
        print(format_table([{"emotion": e, "share": f"{s:.2f}"} for e, s in
                            summary["emotion_share"].items()],
                           [("emotion", "emotion"), ("share", "share of face-frames")]))
    return 0


entry_point = command(main)


if __name__ == "__main__":
    entry_point()
