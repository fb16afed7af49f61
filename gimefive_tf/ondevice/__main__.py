"""`python -m gimefive_tf.ondevice BUNDLE PICTURE...`: what a phone app does with the on-device
bundle, run here with LiteRT, numpy and Pillow only (no TensorFlow, Keras or OpenCV): the
records `predict` prints, one per face.
"""

from gimefive_tf.cli import (RECORDS_JSON_HELP, ArgumentParser, command, print_face_results,
                             progress)


def build_parser():
    parser = ArgumentParser(prog="gimefive-ondevice", description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", metavar="BUNDLE",
                        help="the folder `export --formats mobile` wrote (export/mobile)")
    parser.add_argument("inputs", nargs="+", metavar="PICTURE",
                        help="image files, folders or quoted glob patterns")
    parser.add_argument("--json", action="store_true", help=RECORDS_JSON_HELP)
    return parser


def main(argv=None):
    from gimefive_tf.analyze import FaceResult
    from gimefive_tf.ondevice import OnDevicePipeline, read_picture
    from gimefive_tf.pictures import collect

    args = build_parser().parse_args(argv)
    pipeline = OnDevicePipeline(args.bundle)
    paths = collect(args.inputs)
    results = []
    for path in progress(paths, "on-device pipeline"):
        picture = read_picture(path)
        results += [FaceResult(str(path), reason=f"{path} is not a readable image")] \
            if picture is None else pipeline.results(picture, str(path))
    print_face_results(results, len(paths), args.json)
    return 0


entry_point = command(main)


if __name__ == "__main__":
    entry_point()
