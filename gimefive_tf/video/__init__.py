"""Faces -> emotions -> heatmaps over a video, frame by frame: the library half of `python -m
gimefive_tf.video` (its command line is `video/__main__.py`).

`VideoAnalyzer` runs every frame through the face pipeline (gimefive_tf.analyze: detect, frame
like the training faces, classify and explain in one pass) with tracking across frames;
`annotate` runs it over a capture and writes the annotated video (the outline of the crop the
model saw, the dominant emotion, the six scores, the heatmap blended on the crop) and the
per-frame CSV `frame,time_s,face_id,x,y,w,h,tracked,emotion,happiness,...,fear` (tracked=1:
found by looking near the face's last place rather than by a search of the whole frame);
`plot_timeline` draws the scores over time per face and `summarize` counts them;
`annotate_video` is the whole job on a file or camera, as the command runs it.
"""


import collections
import csv
import pathlib
import time

import numpy as np

from gimefive_tf.data.frames import iter_frames
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.outputs import finish_figure
from gimefive_tf.faces import FaceTracker, is_duplicate
from gimefive_tf.faces.tracking import SMOOTH_FRAMES, is_cut, thumbnail
from gimefive_tf.labels import EMOTIONS

CSV_HEADER = ("frame", "time_s", "face_id", "x", "y", "w", "h", "tracked", "emotion") + EMOTIONS
COLORS = {"happiness": (40, 200, 40), "surprise": (230, 200, 20), "sadness": (60, 90, 230),
          "anger": (230, 40, 40), "disgust": (140, 70, 200), "fear": (240, 140, 30)}
EXPLAIN_CHOICES = ("gradcam", "gradcam++", "layercam", "none")
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv")  # what the mp4v writer fills


class VideoAnalyzer:
    """Frames through the face pipeline with tracking. The whole frame is searched every
    `search_every` analysed frames (and whenever no face is tracked); in between, and whenever
    the search misses a face it had a frame ago, each face is looked for near its last place
    (at the scale the detector likes, with a lower threshold; by MTCNN where BlazeFace finds
    nothing there, in the default search), which carries it on or finds it gone. While no face
    is followed, every `search_every`-th frame is searched as a photo is (upright): where
    BlazeFace finds nothing, MTCNN searches too (a dark or grotesque face that BlazeFace does
    not see at all, MTCNN may). Faces keep stable ids; each face's scores are averaged over
    its last `smooth` frames. A face followed by looks near its last place keeps
    about the size the last search measured. At a cut to a new shot every face is forgotten:
    the faces after it are searched for afresh, get new ids and start their smoothing anew (a
    face in the last shot's place is not it, and a borderline box there is not a face on its
    word). A face's eyes, placed by a closer look when a search first finds it
    (`FaceCropper.refined`), are carried along while it is followed (`search_near`).
    """

    def __init__(self, pipeline, smooth=SMOOTH_FRAMES, search_every=5):
        self.pipeline, self.search_every = pipeline, max(1, int(search_every))
        self.tracker = FaceTracker()
        self.history = collections.defaultdict(lambda: collections.deque(maxlen=max(1, smooth)))
        self.analysed, self.last_thumbnail = 0, None

    def __call__(self, rgb):
        """[(face_id, box, smoothed probabilities, heatmap or None, crop corners, tracked)]."""
        frame_thumbnail = thumbnail(rgb)
        if is_cut(self.last_thumbnail, frame_thumbnail):
            self.tracker.forget()  # new ids: nothing of the last shot's faces is used again
        self.last_thumbnail = frame_thumbnail
        known = self.tracker.current()
        due = self.analysed % self.search_every == 0
        self.analysed += 1
        found = self.pipeline.faces(rgb, trusted=known, thorough=due and not known, turned=False) \
            if due or not known else []
        boxes = [box for box, _, _ in found]
        followed = []
        for face_id, last in self.tracker.lost(boxes):
            box = self.pipeline.cropper.search_near(rgb, last, self.tracker.measured_side(face_id))
            if box is not None and not is_duplicate(box, boxes + followed):
                followed.append(box)  # one face, one record: not a face found already
        found += [(box, *self.pipeline.frame(rgb, box)) for box in followed]
        if not found:
            self.tracker.update([])
            return []
        ids = self.tracker.update([box for box, _, _ in found], searched=len(boxes))
        for face_id in set(self.history) - set(self.tracker.tracks):
            del self.history[face_id]  # a face gone for good: its scores are not needed again
        probabilities, heatmaps, _ = self.pipeline.classify(np.stack([c for _, c, _ in found]))
        results = []
        for index, (face_id, (box, _, corners)) in enumerate(zip(ids, found)):
            self.history[face_id].append(probabilities[index])
            results.append((face_id, box, np.mean(self.history[face_id], axis=0),
                            None if heatmaps is None else heatmaps[index], corners,
                            index >= len(boxes)))
        return results


def write_demo_clip(path, frames=100, fps=25):
    """A 640x480 clip of scikit-image's astronaut photo (a real face) panning slowly to and fro
    across a grey frame: a video anyone can run the annotator on (notebooks, benchmarks), one
    face throughout. MJPG in .avi."""
    import cv2
    from skimage import data

    face = cv2.resize(data.astronaut()[20:300, 120:360], (240, 280))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    for index in range(frames):
        frame = np.full((480, 640, 3), 80, np.uint8)
        x = 100 + abs(index % 200 - 100) * 2  # 100 -> 300 -> 100 px, 2 px a frame
        frame[100:380, x:x + 240] = face
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()
    return pathlib.Path(path)


def draw(frame_bgr, results, alpha=0.4):
    """The crop each face was classified from (its outline and heatmap), its emotion and the
    six scores as bars, drawn onto the BGR frame in place."""
    import cv2

    from gimefive_tf.explain.visualize import colorize

    height, width = frame_bgr.shape[:2]
    for face_id, box, probs, heatmap, corners, carried in results:
        emotion = EMOTIONS[int(np.argmax(probs))]
        color = COLORS[emotion][::-1]
        outline = np.round(corners).astype(np.int32)
        if heatmap is not None:
            size = heatmap.shape[0]
            source = np.array([[0, 0], [size, 0], [size, size]], np.float32)
            onto = cv2.getAffineTransform(source, corners[:3].astype(np.float32))
            heat = cv2.warpAffine(colorize(heatmap)[..., ::-1], onto, (width, height))
            mask = cv2.fillConvexPoly(np.zeros((height, width), np.uint8), outline, 1) > 0
            frame_bgr[mask] = cv2.addWeighted(frame_bgr, 1 - alpha, heat, alpha, 0)[mask]
        cv2.polylines(frame_bgr, [outline], True, color, 1 if carried else 2, cv2.LINE_AA)
        top = int(outline[:, 1].min())
        left, right = int(outline[:, 0].min()), int(outline[:, 0].max())
        cv2.putText(frame_bgr, f"#{face_id} {emotion} {probs.max():.2f}",
                    (max(0, left), max(12, top - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1,
                    cv2.LINE_AA)
        bar_x = min(right + 6, width - 110)
        for row, (name, value) in enumerate(zip(EMOTIONS, probs)):
            y = max(0, top) + 12 * row
            cv2.rectangle(frame_bgr, (bar_x, y), (bar_x + int(50 * value), y + 9),
                          COLORS[name][::-1], -1)
            cv2.putText(frame_bgr, name[:4], (bar_x + 54, y + 9), cv2.FONT_HERSHEY_SIMPLEX,
                        0.33, (255, 255, 255), 1, cv2.LINE_AA)
    return frame_bgr


def annotate(capture, analyzer, writer_path=None, csv_path=None, every=1, show=False,
             progress_bar=None, max_frames=None):
    """Run the analyzer over the capture; returns (rows, frames_read, interrupted, fps)."""
    import cv2

    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = None
    if writer_path:
        from gimefive_tf.quiet import native_stderr_silenced

        with native_stderr_silenced():  # OpenCV explains a refusal on fd 2; one line says it
            writer = cv2.VideoWriter(str(writer_path), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                     (width, height))
        if not writer.isOpened():
            raise GiMeFiveError(f"cannot write a video to {writer_path}")
    handle = open(csv_path, "w", newline="") if csv_path else None
    table = csv.writer(handle) if handle else None
    if table:
        table.writerow(CSV_HEADER)
    rows, read, interrupted, results = [], 0, False, []
    stop = _StopBetweenFrames()
    started = time.perf_counter()
    try:  # every frame is written; every `every`-th one is analysed
        for frame_index, rgb in iter_frames(capture):
            if stop.requested or (max_frames is not None and frame_index >= max_frames):
                interrupted = stop.requested
                break
            if frame_index % every == 0:
                results = analyzer(rgb)
                for face_id, box, probs, _, _, carried in results:
                    row = {"frame": frame_index, "time_s": round(frame_index / fps, 3),
                           "face_id": face_id, "x": box.x, "y": box.y, "w": box.w, "h": box.h,
                           "tracked": int(carried), "emotion": EMOTIONS[int(np.argmax(probs))],
                           "emotion_id": int(np.argmax(probs)),
                           **{e: round(float(p), 4) for e, p in zip(EMOTIONS, probs)}}
                    rows.append(row)
                    if table:
                        table.writerow([row[key] for key in CSV_HEADER])
            if writer is not None or show:
                frame = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
                draw(frame, results)
            if writer is not None:
                writer.write(frame)
            if show:
                cv2.imshow("gimefive", frame)
                if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                    break
            read = frame_index + 1
            if progress_bar is not None:
                progress_bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stop.restore()
        if writer is not None:
            writer.release()
        if handle:
            handle.close()
        capture.release()
        if show:
            cv2.destroyAllWindows()
    elapsed = time.perf_counter() - started
    return rows, read, interrupted, read / elapsed if elapsed else 0.0


class _StopBetweenFrames:
    """Ctrl-C (SIGINT) asks the frame loop to stop after the frame in hand, so the video, the
    CSV and the count always agree; outside the main thread Ctrl-C stays an exception."""

    def __init__(self):
        import signal
        import threading

        self.requested, self.previous = False, None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._request)

    def _request(self, *_):
        self.requested = True

    def restore(self):
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None


def summarize(rows, frames):
    faces = sorted({row["face_id"] for row in rows})
    frames_with_faces = len({row["frame"] for row in rows})
    counts = collections.Counter(row["emotion"] for row in rows)
    share = {e: round(counts[e] / len(rows), 4) if rows else 0.0 for e in EMOTIONS}
    return {"frames": frames, "frames_with_faces": frames_with_faces, "faces": len(faces),
            "face_rows": len(rows), "emotion_share": share}


def plot_timeline(rows, path=None):
    """Scores over time, one panel per face."""
    from matplotlib.figure import Figure

    faces = sorted({row["face_id"] for row in rows})[:6]
    figure = Figure(figsize=(9, 2.4 * len(faces)))
    axes = figure.subplots(len(faces), 1, squeeze=False)
    for axis, face in zip(axes[:, 0], faces):
        mine = [row for row in rows if row["face_id"] == face]
        times = [row["time_s"] for row in mine]
        for emotion in EMOTIONS:
            axis.plot(times, [row[emotion] for row in mine], label=emotion,
                      color=np.array(COLORS[emotion]) / 255)
        axis.set_ylim(0, 1)
        axis.set_ylabel(f"face #{face}")
    axes[-1, 0].set_xlabel("time (s)")
    axes[0, 0].legend(ncol=6, fontsize=7, loc="upper right")
    figure.tight_layout()
    return finish_figure(figure, path, dpi=90)


def open_source(source, camera=None):
    """(an OpenCV capture, its name) of a video file, or of camera number `camera`."""
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


def annotate_video(source=None, out=None, csv_path=None, plot_path=None, model=None,
                   detector=None, framing=None, explain="default", smooth=SMOOTH_FRAMES,
                   search_every=5, every=1, show=False, max_frames=None, overwrite=False,
                   camera=None, progress=None):
    """Run the video path over a file (`source`) or camera number `camera` and return its
    summary (frames, faces, emotion shares, processing fps, the files written).

    Writes the annotated video `out` (optional), the per-frame CSV (default: beside `out`) and
    the scores-over-time plot (default: beside the CSV); an existing file is refused unless
    `overwrite`. explain: a CAM method, "default" (the library's) or "none"; smooth: frames
    each face's scores are averaged over (frames are averaged over time instead of
    mirror-averaged); search_every: a
    whole-frame search every K analysed frames, known faces followed near their last place in
    between. progress: cli.progress (a bar over the frames) or None.
    """
    from gimefive_tf.analyze import FacePipeline
    from gimefive_tf.faces import DEFAULT_DETECTOR, VIDEO_DETECTION_SIDE
    from gimefive_tf.outputs import claim_file

    if (source is None) == (camera is None):
        raise GiMeFiveError("pass a video file or --camera N (one of them)")
    csv_path = csv_path or (str(pathlib.Path(out).with_suffix(".csv")) if out else None)
    plot_path = plot_path or (str(pathlib.Path(csv_path).with_suffix(".png")) if csv_path
                              else None)
    if out and pathlib.Path(out).suffix.lower() not in VIDEO_SUFFIXES:
        raise GiMeFiveError(f"--out {out}: name a video file ({', '.join(VIDEO_SUFFIXES)})")
    for path, option in ((out, "--out"), (csv_path, "--csv"), (plot_path, "--plot")):
        if path:
            claim_file(path, overwrite, option)
    capture, name = open_source(source, camera)
    from gimefive_tf.explain.methods import DEFAULT_METHOD

    explain = {"default": DEFAULT_METHOD, "none": None}.get(explain, explain)
    pipeline = FacePipeline(model, detector or DEFAULT_DETECTOR, framing, explain=explain,
                            batch_size=4, max_side=VIDEO_DETECTION_SIDE,
                            mirror=False)  # frames are averaged over time (smooth) instead
    analyzer = VideoAnalyzer(pipeline, smooth, search_every)
    import cv2

    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    bar = progress(None, "frames", total=total) if progress else None
    rows, frames, interrupted, fps = annotate(capture, analyzer, out, csv_path, every, show,
                                              bar, max_frames)
    if bar is not None:
        bar.close()
    if plot_path and rows:
        plot_timeline(rows, plot_path)
    return {"input": name, **summarize(rows, frames), "processing_fps": round(fps, 1),
            "interrupted": interrupted, "video": out, "csv": csv_path,
            "plot": plot_path if rows else None}
