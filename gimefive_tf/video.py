"""`python -m gimefive_tf.video INPUT | --camera N`: faces -> emotions -> heatmaps, frame by frame.

Writes the annotated video (same size and fps: a box per face, the dominant emotion above it,
the six scores beside it, the Grad-CAM heatmap blended on the face), a per-frame CSV
`frame,time_s,face_id,x,y,w,h,emotion,happiness,...,fear`, a plot of the scores over time per
face, and prints a summary. Ctrl-C stops cleanly: everything written so far stays playable.
"""

import argparse
import collections
import csv
import pathlib
import time

import numpy as np

from gimefive_tf.cli import command, format_table, print_json, progress
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.faces import (DETECTORS, VIDEO_DETECTION_SIDE, FaceTracker, crop_face,
                               crop_square, detect_faces)
from gimefive_tf.labels import EMOTIONS

CSV_HEADER = ("frame", "time_s", "face_id", "x", "y", "w", "h", "emotion") + EMOTIONS
COLORS = {"happiness": (40, 200, 40), "surprise": (230, 200, 20), "sadness": (60, 90, 230),
          "anger": (230, 40, 40), "disgust": (140, 70, 200), "fear": (240, 140, 30)}


class FrameAnalyzer:
    """Detect, track, classify (batched across faces), smooth and optionally explain one frame."""

    def __init__(self, model, detector="haar", explain="gradcam", smooth=5, margin=0.15):
        from gimefive_tf.inference import Predictor

        self.size = model.input_shape[1]
        self.predictor = Predictor(model, batch_size=4)
        self.explainer = None
        if explain != "none":
            from gimefive_tf.explain import make_explainer

            self.explainer = make_explainer(model, explain, batch_size=4)
        self.detector, self.margin = detector, margin
        self.tracker = FaceTracker()
        self.history = collections.defaultdict(lambda: collections.deque(maxlen=max(1, smooth)))

    def __call__(self, rgb):
        """[(face_id, box, smoothed probabilities, heatmap or None)] for the faces in `rgb`."""
        boxes = detect_faces(rgb, self.detector, max_side=VIDEO_DETECTION_SIDE)
        if not boxes:
            self.tracker.update([])
            return []
        ids = self.tracker.update(boxes)
        crops = np.stack([crop_face(rgb, box, self.size, self.margin) for box in boxes])
        probabilities = self.predictor(crops)
        heatmaps = [None] * len(boxes)
        if self.explainer is not None:
            heatmaps = list(self.explainer(crops, probabilities.argmax(1))[0])
        results = []
        for face_id, box, probs, heatmap in zip(ids, boxes, probabilities, heatmaps):
            self.history[face_id].append(probs)
            results.append((face_id, box, np.mean(self.history[face_id], axis=0), heatmap))
        return results


def draw(frame_bgr, results, margin=0.15, alpha=0.4):
    """Boxes, labels, score bars and heatmaps drawn onto the BGR frame in place."""
    import cv2

    from gimefive_tf.explain.visualize import colorize

    height, width = frame_bgr.shape[:2]
    for face_id, box, probs, heatmap in results:
        emotion = EMOTIONS[int(np.argmax(probs))]
        color = COLORS[emotion][::-1]
        if heatmap is not None:
            x0, y0, side = crop_square(box, margin)
            xa, ya, xb, yb = max(0, x0), max(0, y0), min(width, x0 + side), min(height, y0 + side)
            if xb > xa and yb > ya:
                heat = cv2.resize(colorize(heatmap)[..., ::-1], (side, side))
                region = frame_bgr[ya:yb, xa:xb]
                patch = heat[ya - y0:yb - y0, xa - x0:xb - x0]
                frame_bgr[ya:yb, xa:xb] = cv2.addWeighted(region, 1 - alpha, patch, alpha, 0)
        cv2.rectangle(frame_bgr, (box.x, box.y), (box.x + box.w, box.y + box.h), color, 2)
        cv2.putText(frame_bgr, f"#{face_id} {emotion} {probs.max():.2f}",
                    (box.x, max(12, box.y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1,
                    cv2.LINE_AA)
        bar_x = min(box.x + box.w + 6, width - 110)
        for row, (name, value) in enumerate(zip(EMOTIONS, probs)):
            y = box.y + 12 * row
            cv2.rectangle(frame_bgr, (bar_x, y), (bar_x + int(50 * value), y + 9),
                          COLORS[name][::-1], -1)
            cv2.putText(frame_bgr, name[:4], (bar_x + 54, y + 9), cv2.FONT_HERSHEY_SIMPLEX,
                        0.33, (255, 255, 255), 1, cv2.LINE_AA)
    return frame_bgr


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
        capture = cv2.VideoCapture(int(camera))
        if not capture.isOpened():
            raise GiMeFiveError(f"camera {camera} is not available")
        return capture, f"camera {camera}"
    from gimefive_tf.data.frames import open_video

    return open_video(source), str(source)


def annotate(capture, analyzer, writer_path=None, csv_path=None, every=1, show=False,
             progress_bar=None, max_frames=None):
    """Run the analyzer over the capture; returns (rows, frames_read, interrupted, fps)."""
    import cv2

    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = None
    if writer_path:
        writer = cv2.VideoWriter(str(writer_path), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                 (width, height))
        if not writer.isOpened():
            raise GiMeFiveError(f"cannot write a video to {writer_path}")
    handle = open(csv_path, "w", newline="") if csv_path else None
    table = csv.writer(handle) if handle else None
    if table:
        table.writerow(CSV_HEADER)
    rows, frame_index, interrupted, results = [], 0, False, []
    started = time.perf_counter()
    try:
        while max_frames is None or frame_index < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            if frame_index % every == 0:
                results = analyzer(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                for face_id, box, probs, _ in results:
                    row = (frame_index, round(frame_index / fps, 3), face_id, box.x, box.y,
                           box.w, box.h, EMOTIONS[int(np.argmax(probs))],
                           *(round(float(p), 4) for p in probs))
                    rows.append(row)
                    if table:
                        table.writerow(row)
            if writer is not None or show:
                draw(frame, results, analyzer.margin)
            if writer is not None:
                writer.write(frame)
            if show:
                cv2.imshow("gimefive", frame)
                if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                    break
            frame_index += 1
            if progress_bar is not None:
                progress_bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if writer is not None:
            writer.release()
        if handle:
            handle.close()
        capture.release()
        if show:
            cv2.destroyAllWindows()
    elapsed = time.perf_counter() - started
    return rows, frame_index, interrupted, frame_index / elapsed if elapsed else 0.0


def summarize(rows, frames):
    faces = sorted({row[2] for row in rows})
    frames_with_faces = len({row[0] for row in rows})
    counts = collections.Counter(row[7] for row in rows)
    share = {e: round(counts[e] / len(rows), 4) if rows else 0.0 for e in EMOTIONS}
    return {"frames": frames, "frames_with_faces": frames_with_faces, "faces": len(faces),
            "face_rows": len(rows), "emotion_share": share}


def plot_timeline(rows, path):
    """Scores over time, one panel per face."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    faces = sorted({row[2] for row in rows})[:6]
    figure, axes = plt.subplots(len(faces), 1, figsize=(9, 2.4 * len(faces)), squeeze=False)
    for axis, face in zip(axes[:, 0], faces):
        mine = [row for row in rows if row[2] == face]
        times = [row[1] for row in mine]
        for index, emotion in enumerate(EMOTIONS):
            axis.plot(times, [row[8 + index] for row in mine], label=emotion,
                      color=np.array(COLORS[emotion]) / 255)
        axis.set_ylim(0, 1)
        axis.set_ylabel(f"face #{face}")
    axes[-1, 0].set_xlabel("time (s)")
    axes[0, 0].legend(ncol=6, fontsize=7, loc="upper right")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def build_parser():
    parser = argparse.ArgumentParser(prog="gimefive-video", description=__doc__.split("\n\n")[0])
    parser.add_argument("input", nargs="?", help="a video file OpenCV reads")
    parser.add_argument("--camera", type=int, help="read camera N instead of a file")
    parser.add_argument("--model", help="a .keras model (default: the shipped model)")
    parser.add_argument("--out", help="annotated video to write (.mp4)")
    parser.add_argument("--csv", help="per-frame CSV to write (default: beside --out, or none)")
    parser.add_argument("--plot", help="scores-over-time PNG (default: beside the CSV)")
    parser.add_argument("--explain", choices=("gradcam", "none"), default="gradcam",
                        help="blend Grad-CAM on faces (gradcam) or not")
    parser.add_argument("--every", type=int, default=1, help="analyse every K-th frame (1)")
    parser.add_argument("--smooth", type=int, default=5,
                        help="average each face's scores over its last W analysed frames (5)")
    parser.add_argument("--detector", choices=DETECTORS, default="haar")
    parser.add_argument("--show", action="store_true", help="show a live window (needs a GUI)")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def main(argv=None):
    from gimefive_tf.loading import load_model

    args = build_parser().parse_args(argv)
    if (args.input is None) == (args.camera is None):
        raise GiMeFiveError("pass a video file or --camera N (one of them)")
    if args.every < 1 or args.smooth < 1:
        raise GiMeFiveError("--every and --smooth must be at least 1")
    csv_path = args.csv or (str(pathlib.Path(args.out).with_suffix(".csv")) if args.out else None)
    plot_path = args.plot or (str(pathlib.Path(csv_path).with_suffix(".png")) if csv_path
                              else None)
    for path in (args.out, csv_path, plot_path):
        if path and pathlib.Path(path).exists():
            raise GiMeFiveError(f"{path} already exists; nothing was overwritten")
    if args.show:
        require_gui()
    capture, name = open_source(args.input, args.camera)
    analyzer = FrameAnalyzer(load_model(args.model), args.detector, args.explain, args.smooth)
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
