"""Frames per second of the video annotator on a 640x480 clip with one face, as JSON.

    python benchmarks/video_throughput.py [--model M.keras] [--frames 150]

The clip is scikit-image's astronaut photo (a real face) panned slowly across a 640x480 frame;
timing covers decode, face detection, tracking, classification, drawing and encoding.
"""

import argparse
import json
import pathlib
import sys
import tempfile


REPO = pathlib.Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help=".keras model (default: an untrained gimefive)")
    parser.add_argument("--frames", type=int, default=150)
    args = parser.parse_args()

    from gimefive_tf.analyze import FacePipeline
    from gimefive_tf.data.frames import open_video
    from gimefive_tf.faces import VIDEO_DETECTION_SIDE
    from gimefive_tf.loading import load_model
    from gimefive_tf.models import create_model
    from gimefive_tf.video import VideoAnalyzer, annotate, write_demo_clip

    model = load_model(args.model) if args.model else create_model("gimefive")
    results = {"size": "640x480", "frames": args.frames}
    with tempfile.TemporaryDirectory() as folder:
        clip = pathlib.Path(folder) / "clip.avi"
        write_demo_clip(clip, args.frames)
        for explain in ("none", "gradcam", "layercam"):
            analyzer = VideoAnalyzer(FacePipeline(
                model, explain=None if explain == "none" else explain, batch_size=4,
                max_side=VIDEO_DETECTION_SIDE, mirror=False))
            annotate(open_video(clip), analyzer, max_frames=5)  # warm up (tracing, XLA)
            rows, frames, _, fps = annotate(open_video(clip), analyzer,
                                            writer_path=pathlib.Path(folder) / f"{explain}.mp4")
            results[f"fps_{explain}"] = round(fps, 1)
            results[f"face_rows_{explain}"] = len(rows)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
