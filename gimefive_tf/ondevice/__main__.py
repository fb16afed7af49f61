"""`python -m gimefive_tf.ondevice BUNDLE PICTURE...`: what a phone app does with the on-device
bundle, run here with LiteRT, numpy and Pillow only (no TensorFlow, Keras or OpenCV): the
records `predict` prints, one per face.
"""

from gimefive_tf.cli import (RECORDS_JSON_HELP, ArgumentParser, command, print_face_records,
                             print_skipped, progress)
from gimefive_tf.errors import GiMeFiveError


def build_parser():
    parser = ArgumentParser(prog="gimefive-ondevice", description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", metavar="BUNDLE",
                        help="the folder `export --formats mobile` wrote (export/mobile)")
    parser.add_argument("inputs", nargs="+", metavar="PICTURE",
                        help="image files, folders or quoted glob patterns")
    parser.add_argument("--json", action="store_true", help=RECORDS_JSON_HELP)
    return parser


def main(argv=None):
    from gimefive_tf.ondevice import BundleError, OnDevicePipeline, read_picture
    from gimefive_tf.pictures import collect

    args = build_parser().parse_args(argv)
    try:
        pipeline = OnDevicePipeline(args.bundle)
    except BundleError as error:
        raise GiMeFiveError(str(error)) from None
    paths = collect(args.inputs)
    records, unreadable = [], []
    for path in progress(paths, "on-device pipeline"):
        picture = read_picture(path)
        if picture is None:
            unreadable.append((str(path), f"{path} is not a readable image"))
            records.append({"input": str(path), "face": None, "box": None, "emotion": None,
                            "scores": None, "reason": unreadable[-1][1]})
            continue
        records += pipeline.records(picture, str(path))
    if unreadable and len(unreadable) == len(paths):
        raise GiMeFiveError(unreadable[0][1] if len(paths) == 1 else
                            f"none of the {len(paths)} inputs is a readable image")
    print_skipped(unreadable)
    print_face_records(records, args.json)
    return 0


entry_point = command(main)


if __name__ == "__main__":
    entry_point()
