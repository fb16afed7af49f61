"""`python -m gimefive_tf.predict [IMAGE|FOLDER ...]`: the six emotion scores of every face.

With no input it classifies a real face that ships with scikit-image (the astronaut photo), so
a fresh install shows the whole path: photo -> face detection -> a crop framed like the
training faces -> model -> scores. Every face in a picture gets a row; a picture without a
face gets one row that says so (`--crop auto` classifies such a picture whole instead).
"""

from gimefive_tf.cli import (
    RECORDS_JSON_HELP, ArgumentParser, add_face_arguments, add_model_argument, command,
    positive_int, print_face_results, progress)
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.outputs import claim_file


def build_parser():
    parser = ArgumentParser(
        prog="gimefive-predict",
        description="Classify the emotion of every face in images (default: a demo photo).")
    parser.add_argument("inputs", nargs="*", metavar="IMAGE",
                        help="image files, folders or quoted glob patterns ('shots/**/*.jpg'; "
                             "default: scikit-image's astronaut photo)")
    add_model_argument(parser)
    add_face_arguments(parser, crop_help="face: every face, and 'no face found' for a picture "
                       "without one (default); auto: the whole picture when it has no face; "
                       "none: classify each whole picture (already-cropped faces)")
    parser.add_argument("--plot", metavar="PNG", help="save the picture with its faces and "
                        "their scores (one input only)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --plot")
    parser.add_argument("--limit", type=positive_int,
                        help="only the first N images, in file-name order (default all)")
    parser.add_argument("--json", action="store_true", help=RECORDS_JSON_HELP)
    return parser


def main(argv=None):
    from gimefive_tf.analyze import FacePipeline, collect_inputs, plot_faces
    from gimefive_tf.pictures import read_picture

    args = build_parser().parse_args(argv)
    if args.plot and len(args.inputs) > 1:
        raise GiMeFiveError("--plot draws one image; pass a single input")
    inputs = collect_inputs(args.inputs, args.limit)
    if args.plot and len(inputs) != 1:
        raise GiMeFiveError("--plot draws one image; pass a single input")
    if args.plot:
        claim_file(args.plot, args.overwrite, "--plot")
    pipeline = FacePipeline(args.model, args.detector, args.framing, args.crop,
                            turned=not args.upright_only)
    if args.plot:
        name, image = inputs[0]
        inputs = [(name, read_picture(name) if image is None else image)]
    results = pipeline.run(inputs, progress=progress)
    print_face_results(results, len(inputs), args.json)  # an unreadable --plot input: an error
    if args.plot:
        plot_faces(inputs[0][1], results, args.plot)
    return 0


entry_point = command(main)


if __name__ == "__main__":
    entry_point()
