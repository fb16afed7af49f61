"""`python -m gimefive_tf.batch INPUT... --out DIR`: emotion rows for many files, on Apache Beam.

What `scores` does in one process, as a Beam pipeline: it runs on the DirectRunner here and
unchanged on Flink, Spark or Dataflow (`--runner`; every flag this command does not know is a
Beam pipeline option, e.g. `--direct_num_workers 2 --direct_running_mode multi_processing`):

    match files (paths, folders, globs; gs://, s3://, hdfs:// where Beam's extras for them are
    installed) -> read bytes -> decode (a video: every K-th frame is an element) -> the
    library's face pipeline (detect, frame like the training faces, crop; `--crop none`: the
    inputs are face crops, resized whole) -> RunInference(KeyedModelHandler(
    TFModelHandlerTensor)) keyed by (input, frame, face) -> rows

Rows `input,frame,face,x,y,w,h,emotion,happiness,...,fear` go to DIR/rows-SSSSS-of-NNNNN.csv
(or .parquet); files that cannot be read or decoded, videos that fail and photos without a face
go to DIR/dead_letter-SSSSS-of-NNNNN.csv (`input,reason`), never failing the pipeline. A file's
numbers are those `scores` gives it: the same decoding, face pipeline and model.
"""

import contextlib
import csv
import functools
import io
import os
import pathlib
import shutil
import sys
import tempfile
import time

import numpy as np

from gimefive_tf.cli import (
    ArgumentParser, add_face_arguments, add_model_argument, command, positive_int, print_json,
    progress)
from gimefive_tf.errors import GiMeFiveError, first_line
from gimefive_tf.labels import EMOTIONS

ROW_COLUMNS = ("input", "frame", "face", "x", "y", "w", "h", "emotion") + EMOTIONS
DEAD_LETTER_COLUMNS = ("input", "reason")
FORMATS = ("csv", "parquet")
DEAD_LETTER = "dead_letter"
BROKEN_LINK = "unreadable: a link to nowhere"
COUNTERS = "gimefive_tf.batch"  # the namespace of the pipeline's Beam counters


# ----------------------------------------------------------------------- the pipeline's steps

_files_bar = None  # the command's progress bar while its pipeline runs in its own process


def _tick():
    """One input file further on the command's progress bar. Only a pipeline that runs in the
    command's process (the DirectRunner's in_memory and multi_threading modes) reaches it; on
    worker processes there is none, and Beam reports no live counters to draw one from."""
    if _files_bar is not None:
        _files_bar.update()


def _count(name, value=1):
    from apache_beam.metrics import Metrics

    Metrics.counter(COUNTERS, name).inc(value)


def _reason(error):
    return str(error) if isinstance(error, GiMeFiveError) else \
        f"{type(error).__name__}: {first_line(error)}"


class Decode:
    """A matched file -> (input, frame, RGB picture): the image (frame None) or every K-th frame
    of a video; a file that cannot be read or decoded, or a video that fails, -> a dead letter
    (input, reason). `--crop none` decodes like `scores`, `evaluate` and training (the
    pipeline's decode_image, at the model's size); faces are searched in the picture as the
    face pipeline reads photos (EXIF orientation applied)."""

    def __init__(self, every, crop, size):
        self.every, self.crop, self.size = every, crop, size

    def __call__(self, readable):
        from apache_beam import pvalue

        from gimefive_tf.data.frames import VIDEO_EXTENSIONS

        name = readable.metadata.path
        _count("inputs")
        _tick()
        try:
            if pathlib.PurePath(name).suffix.lower() in VIDEO_EXTENSIONS:
                yield from self.frames(readable)
            else:
                yield name, None, self.decode(readable.read(), name)
                _count("pictures")
        except Exception as error:  # the input's reason, recorded in the dead letters
            yield pvalue.TaggedOutput(DEAD_LETTER, (name, _reason(error)))

    def decode(self, data, name):
        from gimefive_tf.pictures import decode_picture

        if self.crop != "none":
            return decode_picture(data, name)
        import tensorflow as tf

        from gimefive_tf.data.pipeline import decode_image
        from gimefive_tf.quiet import native_stderr_silenced

        try:
            with native_stderr_silenced():  # libjpeg's "Improper call..."; the reason says it
                return decode_image(data, self.size).numpy()
        except tf.errors.InvalidArgumentError:  # TIFF: Pillow's (as `scores` reads it)
            from gimefive_tf.data.pipeline import resize_pixels

            return resize_pixels(decode_picture(data, name), self.size).numpy()

    def frames(self, readable):
        from gimefive_tf.data.frames import iter_frames, open_video

        name = readable.metadata.path
        with local_path(readable) as path:
            capture = open_video(path)
            try:
                for index, rgb in iter_frames(capture, self.every):
                    yield name, index, rgb
                    _count("pictures")
            finally:
                capture.release()


@contextlib.contextmanager
def local_path(readable):
    """The file's local path: itself, or on another file system a temporary copy (OpenCV reads
    videos from paths)."""
    path = readable.metadata.path
    if os.path.isfile(path):
        yield path
        return
    with tempfile.TemporaryDirectory() as folder:
        copy = os.path.join(folder, "video" + pathlib.PurePath(path).suffix)
        with open(copy, "wb") as target, readable.open("application/octet-stream") as source:
            shutil.copyfileobj(source, target)
        yield copy


class FindFaces:
    """(input, frame, picture) -> ((input, frame, face, x, y, w, h), crop) for every face the
    library's face pipeline finds and frames like the training faces (`--crop none`: the whole
    picture, face and box None); a photo without a face -> a dead letter (a video frame without
    one is only counted)."""

    def __init__(self, model, detector, framing, crop, size, turned=True):
        self.settings = (model, detector, framing, crop, size, turned)
        self._pipeline = None  # made where the step runs, once per worker

    def __getstate__(self):
        return {**self.__dict__, "_pipeline": None}

    def __call__(self, picture):
        from apache_beam import pvalue

        from gimefive_tf.analyze import NO_FACE, FacePipeline

        name, frame, image = picture
        try:
            if self._pipeline is None:
                model, detector, framing, crop, size, turned = self.settings
                self._pipeline = FacePipeline(model, detector, framing, crop, classifier=False,
                                              size=size, turned=turned)
            found = self._pipeline.faces(image, turned=frame is None)  # frames come upright
        except Exception as error:  # the picture's reason, recorded in the dead letters
            where = f"frame {frame}: " if frame is not None else ""
            yield pvalue.TaggedOutput(DEAD_LETTER, (name, where + _reason(error)))
            return
        if not found:
            _count("frames_without_face" if frame is not None else "photos_without_face")
            if frame is None:
                yield pvalue.TaggedOutput(DEAD_LETTER, (name, NO_FACE))
        for index, (box, crop, _) in enumerate(found):
            where = [None] * 5 if box is None else [index, *box.to_list()]
            yield (name, frame, *where), crop


@functools.lru_cache(maxsize=4)
def load_classifier(model, crop, batch_size):
    """The FacePipeline that classifies crops: a `.keras` model or shipped name in process, or
    an export's savedmodel/<name>/ folder through its predict_mirrored signature (faces cut
    from pictures) or predict_pixels (crops); cached, so a pipeline run in this process reuses
    the model checked at launch."""
    from gimefive_tf.analyze import FacePipeline

    if not pathlib.Path(model).expanduser().is_dir():
        return FacePipeline(model, crop=crop, batch_size=batch_size)
    from gimefive_tf.serve.servable import Servable

    from gimefive_tf.export import crop_signature, mirrored

    servable = Servable.from_savedmodel(pathlib.Path(model).expanduser())
    signatures = servable.versions[servable.latest]
    if crop_signature(False, False) not in signatures:
        raise GiMeFiveError(f"{model} has no predict_pixels signature; pass a savedmodel/<name>/ "
                            "folder written by python -m gimefive_tf.export")

    def classify(crops, mirror):
        predict = signatures[crop_signature(mirror, False)]
        return predict({"pixels": crops})["probabilities"], None, None

    return FacePipeline(crop=crop, batch_size=batch_size, size=servable.image_size,
                        classifier=classify, mirror=None if mirrored(signatures) else False)


class Classifier:
    """What RunInference runs. TFModelHandlerTensor makes it with `create_model_fn` and loads it
    with `load_weights(model_uri)` (its SAVED_WEIGHTS path), so the model is loaded by the
    project's own loaders: safe_mode `.keras`, or the export's SavedModel signature."""

    def __init__(self, crop, batch_size):
        self.crop, self.batch_size, self.pipeline = crop, batch_size, None

    def load_weights(self, model):
        self.pipeline = load_classifier(model, self.crop, self.batch_size)


def classify_crops(classifier, crops, inference_args=None, model_id=None):
    """TFModelHandlerTensor's inference_fn: one forward pass for a batch of crops, decided as
    the FacePipeline decides (`gimefive_tf.decision`: with the mirror view for faces cut from
    pictures, unless an old export has no mirrored signature)."""
    from apache_beam.ml.inference.base import PredictionResult

    probabilities = classifier.pipeline.classify(np.stack(crops))[0]
    return [PredictionResult(None, p, model_id) for p in probabilities]  # rows need no crops


def to_row(keyed):
    """(key, PredictionResult) -> a row: input, frame, face, box, emotion, six scores."""
    key, result = keyed
    probabilities = np.asarray(result.inference, np.float64)
    _count("rows")
    return {**dict(zip(ROW_COLUMNS, key)), "emotion": EMOTIONS[int(np.argmax(probabilities))],
            **dict(zip(EMOTIONS, probabilities.tolist()))}


def failed_inferences(failure):
    """RunInference's (batch, exception) -> dead letters, one per face of the batch."""
    batch, error = failure
    for (name, frame, face, *_), _ in batch:
        where = "".join(f"{what} {value}, " for what, value in (("frame", frame), ("face", face))
                        if value is not None)
        yield name, f"{where}inference failed: {_reason(error)}"


def csv_line(values):
    """One CSV line: None empty, probabilities with 6 decimals."""
    handle = io.StringIO()
    csv.writer(handle, lineterminator="").writerow(
        "" if v is None else f"{v:.6f}" if isinstance(v, float) else v for v in values)
    return handle.getvalue()


def write(records, label, prefix, columns, file_format):
    """Sharded files `prefix-SSSSS-of-NNNNN.<format>` of dict records (CSV with a header)."""
    import apache_beam as beam

    if file_format == "parquet":
        import pyarrow as pa

        types = {"input": pa.string(), "reason": pa.string(), "emotion": pa.string(),
                 **{e: pa.float64() for e in EMOTIONS}}
        schema = pa.schema([(c, types.get(c, pa.int64())) for c in columns])
        return records | f"Write{label}" >> beam.io.WriteToParquet(
            prefix, schema, file_name_suffix=".parquet")
    return (records
            | f"{label}Lines" >> beam.Map(lambda record: csv_line(record[c] for c in columns))
            | f"Write{label}" >> beam.io.WriteToText(prefix, ".csv", header=",".join(columns)))


def dead_letter(letter):
    _count("dead_letters")
    return dict(zip(DEAD_LETTER_COLUMNS, letter))


def media_extensions():
    """What folders and globs contribute: photos and videos."""
    from gimefive_tf.data.frames import VIDEO_EXTENSIONS
    from gimefive_tf.pictures import EXTENSIONS

    return EXTENSIONS + VIDEO_EXTENSIONS


def build(pipeline, patterns, named, args, size, face_model, broken=()):
    """The pipeline's graph: files -> pictures -> crops -> RunInference -> rows and dead
    letters under args.out."""
    import apache_beam as beam
    from apache_beam.io import fileio
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
    from apache_beam.ml.inference.tensorflow_inference import ModelType, TFModelHandlerTensor

    media = media_extensions()
    pictures = (
        pipeline
        | "Patterns" >> beam.Create(patterns)
        | "Match" >> fileio.MatchAll()
        | "Paths" >> beam.Map(lambda found: found.path)
        | "Media" >> beam.Filter(  # what folders and globs hold: images and videos
            lambda path: path in named or pathlib.PurePath(path).suffix.lower() in media)
        | "Once" >> beam.Distinct()  # also spreads the files over the workers
        | "Read" >> fileio.ReadMatches()
        | "Decode" >> beam.FlatMap(Decode(args.every, args.crop, size)).with_outputs(
            DEAD_LETTER, main="pictures"))
    crops = pictures.pictures | "Faces" >> beam.FlatMap(
        FindFaces(face_model, args.detector, args.framing, args.crop, size,
                  not args.upright_only)).with_outputs(
        DEAD_LETTER, main="crops")
    handler = KeyedModelHandler(TFModelHandlerTensor(
        args.model, ModelType.SAVED_WEIGHTS,
        functools.partial(Classifier, args.crop, args.batch_size), inference_fn=classify_crops,
        min_batch_size=args.batch_size, max_batch_size=args.batch_size))
    results, failed = crops.crops | "Classify" >> RunInference(handler).with_exception_handling()
    rows = results | "Rows" >> beam.Map(to_row)
    links = pipeline | "Broken" >> beam.Create([(path, BROKEN_LINK) for path in broken])
    dead = ((pictures[DEAD_LETTER], crops[DEAD_LETTER], links,
             failed.failed_inferences | "Failed" >> beam.FlatMap(failed_inferences))
            | "DeadLetters" >> beam.Flatten()
            | "Letters" >> beam.Map(dead_letter))
    write(rows, "Rows", FileSystems.join(args.out, "rows"), ROW_COLUMNS, args.format)
    write(dead, "DeadLetters", FileSystems.join(args.out, DEAD_LETTER), DEAD_LETTER_COLUMNS,
          args.format)


# ----------------------------------------------------------------------------- the command

def build_parser():
    parser = ArgumentParser(
        prog="gimefive-batch",
        description="Write emotion rows for many image and video files with an Apache Beam "
                    "pipeline (the DirectRunner here; Flink, Spark or Dataflow with --runner).",
        epilog="Every other --flag is a Beam pipeline option: --runner (DirectRunner by "
               "default, FlinkRunner, SparkRunner, DataflowRunner), --direct_num_workers N "
               "--direct_running_mode multi_processing, and the runner's own.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image or video files, folders (every image and video under them) "
                             "or glob patterns (** crosses folders), on any file system Beam "
                             "reads")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for the row shards and the dead letters (one that holds "
                             "files is refused without --overwrite)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a --out that holds files (an earlier run's rows and "
                             "dead letters are replaced)")
    parser.add_argument("--format", choices=FORMATS, default="csv",
                        help="csv (default) or parquet shards")
    add_model_argument(parser, savedmodel=True)
    add_face_arguments(parser, crop_help="face: a row per face, photos without one go to the "
                       "dead letters (default); auto: such a photo is classified whole; none: "
                       "the inputs are face crops, classified whole (like scores' default)")
    parser.add_argument("--every", type=positive_int, default=1, metavar="K",
                        help="analyse every K-th frame of videos (default 1)")
    parser.add_argument("--batch-size", type=positive_int, default=64,
                        help="crops per RunInference batch (default 64)")
    parser.add_argument("--json", action="store_true", help="print a summary as JSON")
    return parser


def split_arguments(argv):
    """(this command's arguments, Beam's pipeline options): argv split by Beam's own option
    parser, which knows which of its flags take a value, so options may stand anywhere."""
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    class BeamParser(_BeamArgumentParser):
        def error(self, message):
            raise GiMeFiveError(f"Beam pipeline option: {message}")

    parser = BeamParser(allow_abbrev=False, add_help=False)
    for options in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        options._add_argparse_args(parser)  # how PipelineOptions builds its parser
    _, ours = parser.parse_known_args(argv)
    beam, rest = [], list(ours)
    for token in argv:
        if rest and token == rest[0]:
            rest.pop(0)
        else:
            beam.append(token)
    return ours, beam


def _scheme(path):
    from apache_beam.io.filesystems import FileSystems

    scheme = FileSystems.get_scheme(path)
    if scheme is not None:
        try:
            FileSystems.get_filesystem(path)
        except ValueError:
            raise GiMeFiveError(f"{path}: no Beam file system reads {scheme}:// here; install "
                                "its extra (apache-beam[gcp], [aws], [azure] or hdfs)") from None
    return scheme


def input_patterns(inputs):
    """(Beam file patterns, the files named one by one, links to nowhere, how many files the
    pipeline will read): a local folder is
    every file under it (`DIR/**`; its dangling links, which Beam's listing skips, become dead
    letters, and a folder without photos or videos is an error line); anything else is matched
    now, so a path or glob that matches nothing is an error line rather than an empty run."""
    from apache_beam.io.filesystems import FileSystems

    from gimefive_tf.pictures import is_glob, picture_files

    patterns, named, broken, counted = [], set(), [], set()
    media = media_extensions()
    for text in inputs:
        folder = pathlib.Path(text).expanduser()
        if _scheme(text) is None and folder.is_dir():
            files = picture_files(folder, media_extensions())
            if not files:
                raise GiMeFiveError(f"no images or videos in {text}")
            broken += [str(path) for path in files if not path.exists()]
            counted.update(os.path.abspath(path) for path in files if path.exists())
            patterns.append(os.path.join(folder, "**"))
            continue
        try:
            found = FileSystems.match([text])[0].metadata_list
        except Exception as error:  # the file system's refusal (permissions, network)
            raise GiMeFiveError(f"cannot list {text}: {_reason(error)}") from None
        glob = is_glob(text)
        if not found:
            raise GiMeFiveError(f"{text} {'matches no file' if glob else 'does not exist'}; "
                                "pass image or video files, folders or glob patterns")
        if glob and not any(pathlib.PurePath(match.path).suffix.lower() in media
                            for match in found):
            raise GiMeFiveError(f"{text} matches no image or video (only {len(found)} other "
                                "file(s)); pass image or video files, folders or glob patterns")
        patterns.append(text)
        if not glob:
            named.add(text)
        counted.update(match.path if _scheme(match.path) else os.path.abspath(match.path)
                       for match in found if not glob
                       or pathlib.PurePath(match.path).suffix.lower() in media)
    return patterns, named, broken, len(counted)


def written(out):
    """The row and dead-letter shards under `out`, sorted."""
    from apache_beam.io.filesystems import FileSystems

    patterns = [FileSystems.join(out, f"{name}-*") for name in ("rows", DEAD_LETTER)]
    return sorted(found.path for result in FileSystems.match(patterns)
                  for found in result.metadata_list)


def claim_output(out, overwrite):
    """--out for this run: a local folder as every command claims one; on any file system the
    rows and dead letters of an earlier run are refused, or with --overwrite removed first."""
    from apache_beam.io.filesystems import FileSystems

    from gimefive_tf.outputs import claim_folder

    if _scheme(out) is None:
        claim_folder(out, overwrite)
    earlier = written(out)
    if earlier and not overwrite:
        raise GiMeFiveError(f"{out} holds the results of an earlier run; nothing was "
                            "overwritten (pass --overwrite or another --out)")
    if earlier:
        FileSystems.delete(earlier)


def quiet_beam():
    """Beam's log lines (an import-time notice about BigQuery, the runner's chatter) stay off
    stderr, which holds this command's own messages: Python logging gets a handler that
    discards, unless the caller configured logging already."""
    import logging

    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.NullHandler())


def counters(result):
    """{name: value} of the pipeline's counters (0 for one never incremented)."""
    from apache_beam.metrics.metric import MetricsFilter

    found = result.metrics().query(MetricsFilter().with_namespace(COUNTERS))["counters"]
    values = {name: 0 for name in ("inputs", "pictures", "rows", "dead_letters",
                                   "photos_without_face", "frames_without_face")}
    for counter in found:
        values[counter.key.metric.name] += counter.committed or 0
    return values


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    parser.parse_known_args(argv)  # --help and this command's own mistakes, before Beam loads
    quiet_beam()
    ours, beam_options = split_arguments(argv)
    args = parser.parse_args(ours)
    from gimefive_tf.loading import DEFAULT_MODEL, SHIPPED_MODELS, model_file

    args.model = args.model or DEFAULT_MODEL
    patterns, named, broken, total = input_patterns(args.inputs)
    if pathlib.Path(args.model).expanduser().is_dir():
        face_model = None  # an export: the shipped model's framing calibration applies
    elif args.model in SHIPPED_MODELS:
        face_model = args.model  # a name each worker resolves in its own installed package
    else:
        face_model = str(model_file(args.model))
    classifier = load_classifier(args.model, args.crop, args.batch_size)  # a bad model: now
    size = classifier.size
    if args.crop != "none" and classifier.mirror is False:
        from gimefive_tf.export import MIRRORLESS_EXPORT

        print(f"note: {MIRRORLESS_EXPORT.format(name=args.model)}", file=sys.stderr)
    claim_output(args.out, args.overwrite)

    import apache_beam as beam
    from apache_beam.options.pipeline_options import (
        DirectOptions, PipelineOptions, StandardOptions)

    from gimefive_tf.quiet import native_stderr_silenced

    options = PipelineOptions(beam_options)
    runner = options.view_as(StandardOptions).runner or "DirectRunner"
    started = time.perf_counter()
    try:  # an unknown --runner, or one whose extra is not installed
        pipeline = beam.Pipeline(options=options)
    except (ValueError, ImportError) as error:
        raise GiMeFiveError(f"--runner {runner}: {_reason(error)}") from None
    build(pipeline, patterns, named, args, size, face_model, broken)
    in_process = runner.lower().removesuffix("runner").endswith("direct") and \
        options.view_as(DirectOptions).direct_running_mode != "multi_processing"
    global _files_bar
    # stderr as it is before Beam's run silences it, for a bar only an in-process run moves
    terminal = os.fdopen(os.dup(2), "w") if in_process else None
    try:
        if terminal is not None:
            _files_bar = progress(None, "files", total=total, file=terminal)
        with native_stderr_silenced():  # Beam's workers log their start-up there
            result = pipeline.run()
            result.wait_until_finish()
    except Exception as error:  # inputs fail into the dead letters; this is the runner's
        lines = str(error).strip().splitlines() or [type(error).__name__]
        raise GiMeFiveError(f"the {runner} pipeline failed: {lines[-1]}") from None
    finally:
        if _files_bar is not None:
            _files_bar.close()
            _files_bar = None
        if terminal is not None:
            terminal.close()
    seconds = time.perf_counter() - started
    counts = counters(result)
    summary = {"out": args.out, "runner": runner, **counts, "files": written(args.out),
               "seconds": round(seconds, 1),
               "images_per_s": round(counts["pictures"] / seconds, 1)}
    if args.json:
        print_json(summary)
    else:
        print(f"{counts['rows']} rows from {counts['pictures']} pictures of {counts['inputs']} "
              f"files in {args.out} ({summary['images_per_s']} images/s); "
              f"{counts['dead_letters']} dead letters")
    return 0


entry_point = command(main)


if __name__ == "__main__":  # run as gimefive_tf.batch, so workers unpickle its steps by name
    from gimefive_tf.batch import entry_point as batch_entry_point

    batch_entry_point()
