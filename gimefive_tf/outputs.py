"""The one way commands write their outputs: nothing a user wrote is replaced without
--overwrite, a path that cannot be written is refused before the work starts, and every file
appears whole or not at all (written under a temporary name, then renamed into place), so a
killed command never leaves a half-written file that looks finished."""

import contextlib
import os
import pathlib
import shutil
import tempfile

from gimefive_tf.errors import GiMeFiveError


def writable_folder(folder):
    """Create `folder` (and its parents) and check a file can be made in it."""
    folder = pathlib.Path(folder)
    if folder.exists() and not folder.is_dir():
        raise GiMeFiveError(f"{folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".gimefive-probe-"):
            pass
    except OSError as error:
        raise GiMeFiveError(f"cannot write in {folder}: {error.strerror or error}") from None
    return folder


def claim_file(path, overwrite=False, option="--out"):
    """`path` as a new output file: an existing file is refused unless `overwrite`, a folder
    always; its folder is created and checked for writing now, before any work."""
    path = pathlib.Path(path).expanduser()
    if path.is_dir():
        raise GiMeFiveError(f"{option} {path} is a folder; name a file")
    if path.exists() and not overwrite:
        raise GiMeFiveError(f"{path} already exists; nothing was overwritten (pass --overwrite "
                            f"or another {option})")
    writable_folder(path.parent)
    return path


def claim_folder(path, overwrite=False, option="--out", create=True):
    """`path` as an output folder: created if missing; one that holds files is refused unless
    `overwrite` (then files of the same names are replaced, others kept). create=False: only
    refused, not made (a command that makes it once its input is read, so that a failed run
    leaves no empty folder behind)."""
    path = pathlib.Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise GiMeFiveError(f"{option} {path} is a file; name a folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise GiMeFiveError(f"{path} is not empty; nothing was overwritten (pass --overwrite "
                            f"or another {option})")
    return writable_folder(path) if create else path


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path beside `path` to write to; renamed onto `path` when the block ends
    without an exception, removed when it fails. The temporary name holds the process id, so
    processes writing the same file (a distributed search's workers) never share one."""
    path = pathlib.Path(path)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


@contextlib.contextmanager
def atomic_folder(path):
    """A temporary folder path beside `path` (not yet created) to write a whole folder into;
    it replaces `path` when the block ends without an exception, and is removed when it fails:
    the folder appears whole, or not at all."""
    path = pathlib.Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        yield temporary
        shutil.rmtree(path, ignore_errors=True)
        temporary.rename(path)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def write_text(path, text):
    """Write `text` to `path` whole or not at all."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def save_figure(figure, path, **options):
    """figure.savefig(path) whole or not at all (the format from `path`'s suffix)."""
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format=pathlib.Path(path).suffix.lstrip(".") or "png",
                       **options)


def finish_figure(figure, path=None, **options):
    """Save `figure` to `path` when one is given, and return it: commands write files, while a
    notebook shows the returned figure."""
    if path is not None:
        save_figure(figure, path, **options)
    return figure
