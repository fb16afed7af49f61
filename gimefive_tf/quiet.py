"""Native libraries' start-up chatter kept off a command's stderr.

TensorFlow prints its C++ start-up lines (absl's pre-init notice, oneDNN, CUDA probing) and
LiteRT announces its XNNPACK delegate straight on file descriptor 2, below Python, so neither
`warnings` nor `logging` can stop them and TF_CPP_MIN_LOG_LEVEL does not reach the earliest.
A command's stderr should hold its own messages only: importing gimefive_tf installs an import
hook (`quiet_tensorflow()`) that loads TensorFlow, whenever something first imports it, with
descriptor 2 pointed at /dev/null, and probes its devices there. It loads nothing itself, so
`--help` stays instant. A user who sets TF_CPP_MIN_LOG_LEVEL=0 (or 1) sees everything; 2, the
errors after start-up.
"""

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys

USER_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")  # as the user left it
# TensorFlow's C++ logging after start-up stays quiet too, errors included: what it logs as an
# error mid-run is advice about its kernels ("oneDNN supports DT_INT32 only on platforms with
# AVX-512"), while a real failure raises a Python exception that the command reports.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def native_stderr_silenced():
    """Point file descriptor 2 at /dev/null while native code starts up. Python exceptions
    still propagate."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def tensorflow_info_silenced():
    """TensorFlow's Python INFO lines ("Assets written to ...") off for the block: a notebook's
    kernel shows them where a terminal would not."""
    import logging

    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with native_stderr_silenced():
            self.loader.exec_module(module)
            module.config.list_physical_devices()  # the CUDA probe logs on first use


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: find the real spec, then wrap its loader
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow():
    """Load TensorFlow silently when something first imports it, unless the user asked for its
    logs (TF_CPP_MIN_LOG_LEVEL=0 or 1) or it is already loaded."""
    if USER_LOG_LEVEL in ("0", "1") or "tensorflow" in sys.modules or \
            any(isinstance(finder, _QuietTensorFlow) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietTensorFlow())


quiet_tensorflow()
