"""Training and inference images/s of GiMeFive in Keras next to the PyTorch reference, as JSON.

Both run in this one command, on the same machine, with the same batch size, one after the
other (never at the same time), so compare the ratio rather than absolute numbers:

    python benchmarks/train_throughput.py --torch-python /path/to/torch-venv/bin/python

The Keras side uses the project's own training recipe (`gimefive_tf.training.compile_for_training`:
SGD lr 1e-3, momentum 0.9, weight decay 1e-4, cross-entropy) and `model.fit` on a tf.data
stream, exactly as `python -m gimefive_tf.train` does. The PyTorch side is
../shared/bench/torch_gimefive.py, run in the interpreter given by --torch-python (or the
TORCH_PYTHON environment variable), where torch is installed.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
TORCH_SCRIPT = REPO.parent / "shared" / "bench" / "torch_gimefive.py"


def time_per_call(function, argument, steps, warmup):
    for _ in range(warmup):
        function(argument)
    start = time.perf_counter()
    for _ in range(steps):
        function(argument)
    return (time.perf_counter() - start) / steps


def step_breakdown(model, images, labels, steps, warmup):
    """Milliseconds per batch of forward, forward + backward, and the whole optimizer step."""
    import tensorflow as tf

    loss_fn = model.loss

    @tf.function
    def forward(x):
        return model(x, training=True)

    @tf.function
    def backward(x):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(x, training=True))
        return tape.gradient(loss, model.trainable_variables)

    x = tf.constant(images)
    timings = {"forward_ms": time_per_call(forward, x, steps, warmup),
               "forward_backward_ms": time_per_call(backward, x, steps, warmup)}
    return {key: round(value * 1000, 1) for key, value in timings.items()}


def keras_throughput(batch, steps, warmup, infer_jit, profile=False):
    import keras
    import numpy as np
    import tensorflow as tf

    from gimefive_tf.models import create_model
    from gimefive_tf.training import TrainConfig, compile_for_training

    keras.utils.set_random_seed(0)
    model = create_model("gimefive")
    config = TrainConfig(data="benchmark", batch_size=batch)
    compile_for_training(model, config, steps_per_epoch=steps)
    # Training runs as the trainer runs it: jit_compile="auto", which Keras resolves to no XLA on
    # CPU (XLA-compiled training steps measured 3x slower here).
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch, 64, 64, 3)).astype("uint8")
    labels = tf.one_hot(rng.integers(0, 6, batch), 6)
    stream = tf.data.Dataset.from_tensors((images, labels)).repeat().prefetch(4)

    # Inference as gimefive_tf.inference.Predictor runs it (XLA-compiled, fixed batch size),
    # measured first, in a process that has not trained, as in a server.
    from gimefive_tf.inference import Predictor

    predictor = Predictor(model, batch_size=batch, jit_compile=infer_jit)
    seconds = time_per_call(predictor.predict_batch, images, steps, warmup)

    class StepClock(keras.callbacks.Callback):
        """Wall time from the end of the last warm-up step to the end of the last step."""

        def on_train_batch_end(self, step, logs=None):
            if step == warmup - 1:
                self.start = time.perf_counter()
            self.end = time.perf_counter()

    clock = StepClock()
    model.fit(stream, steps_per_epoch=warmup + steps, epochs=1, verbose=0, shuffle=False,
              callbacks=[clock])
    train_ips = steps * batch / (clock.end - clock.start)

    result = {"params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
              "batch": batch, "train_jit_compile": bool(model.jit_compile),
              "infer_jit_compile": infer_jit, "tensorflow": tf.__version__,
              "keras": keras.__version__, "train_images_per_s": round(train_ips, 2),
              "infer_images_per_s": round(batch / seconds, 2)}
    if profile:
        breakdown = step_breakdown(model, images, labels, steps, warmup)
        breakdown["full_step_ms"] = round(1000 * batch / train_ips, 1)
        breakdown["inference_ms"] = round(1000 * seconds, 1)
        result["breakdown"] = breakdown
    return result


def torch_throughput(python, batch, steps, warmup):
    if not TORCH_SCRIPT.exists():
        return {"error": f"{TORCH_SCRIPT} not found"}
    command = [python, str(TORCH_SCRIPT), "--batch", str(batch), "--steps", str(steps),
               "--warmup", str(warmup), "--json"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16, help="batch size (the paper's: 16)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--infer-jit", choices=("on", "off"), default="on",
                        help="XLA-compile inference, as gimefive_tf.inference does (on)")
    parser.add_argument("--profile", action="store_true",
                        help="also time forward and forward+backward passes alone")
    parser.add_argument("--torch-python", default=os.environ.get("TORCH_PYTHON"),
                        help="python with torch installed (default: $TORCH_PYTHON)")
    args = parser.parse_args()

    result = {"keras": keras_throughput(args.batch, args.steps, args.warmup,
                                        args.infer_jit == "on", args.profile)}
    if args.torch_python:
        result["torch"] = torch_throughput(args.torch_python, args.batch, args.steps, args.warmup)
        torch = result["torch"]
        if "error" not in torch:
            for key in ("train_images_per_s", "infer_images_per_s"):
                result[f"{key.split('_')[0]}_ratio"] = round(result["keras"][key] / torch[key], 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
