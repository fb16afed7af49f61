"""Train several GiMeFive models at once on one GPU machine that has no TensorFlow.

The lent accelerator machines carry JAX and PyTorch but not TensorFlow, and give one command
of at most ten minutes. So this script runs the project's own model code (`build_gimefive`, the
augmentation layers of `gimefive_tf.data.augment`: all `keras.ops`, backend-free) under Keras 3
on JAX (PyTorch if JAX sees no GPU), as several processes sharing the GPU, each with a
wall-clock deadline instead of an epoch count: its cosine learning rate, set at each epoch,
follows the share of the time to its deadline spent, so a run of many epochs anneals to ~0 in
time however fast the machine is (one of a few epochs does not).

Phase 1 trains FER2013 models to the end of the budget and RAF-DB "teachers" to its middle;
phase 2 distills the teachers' averaged predictions (mirrored too) into a student started from
the best teacher. Every run keeps its best validation epoch; the best models come back as
weight files (`export_weights`) that `accelerator/import_weights.py` (TensorFlow) turns into
`.keras` models. The accuracies to report are measured there, through tf.data.

    python accelerator/train_on_gpu.py --data .accel --out $OUT --budget 480

Keep budget + grace + ~40 s (start-up, final predictions, exports) under the call's limit.
"""

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARAMETERS = 10_478_086  # trainable, of create_model("gimefive"): the paper's 15-layer model
PART_BYTES = 15 * 2**20  # the machine returns files of at most 16 MiB ...
MAX_FILES = 8            # ... at most 8 of them
NO_GPU = 3               # a worker's exit code when its backend sees no GPU

# The recipe of the shipped CPU models (SGD, momentum 0.9, label smoothing 0.1, flip, rotation
# 10, pad-4 crop, erasing), at batch 64 with the learning rate scaled linearly from 0.01 at 32.
AUGMENT = {"flip": True, "rotation": 10, "crop_padding": 4, "erasing": 0.25}
BATCH = 64
STUDENT_MIN_SHARE = 0.25  # the student starts only with this share of the budget left


def plan(budget, limit=None):
    """(phase-1 jobs, the phase-2 student). Teachers end at 55% of the budget."""
    middle, end = 0.55 * budget, budget
    common = {"batch": BATCH, "momentum": 0.9, "label_smoothing": 0.1, "limit": limit}
    jobs = [
        {"name": "fer-a", "data": "fer2013", "seed": 0, "lr": 0.02, "weight_decay": 5e-4,
         "augment": {**AUGMENT, "erasing": 0.1}, "deadline": end},
        {"name": "fer-b", "data": "fer2013", "seed": 1, "lr": 0.02, "weight_decay": 2e-3,
         "augment": AUGMENT, "deadline": end},
    ]
    jobs += [{"name": f"raf-t{seed}", "data": "rafdb", "seed": seed, "lr": 0.02,
              "weight_decay": 5e-3, "augment": AUGMENT, "deadline": middle,
              "predict_train": True}
             for seed in (1, 2, 3)]
    student = {"name": "raf-student", "data": "rafdb", "seed": 4, "lr": 0.01,
               "weight_decay": 5e-3, "augment": AUGMENT, "deadline": end,
               "distill_from": ["raf-t1", "raf-t2", "raf-t3"], "teacher_weight": 0.7,
               "label_smoothing": 0.0}
    return [{**common, **job} for job in jobs], {**common, **student}


# ---------------------------------------------------------------- the worker (one model) ---

def import_model_code():
    """Import the model builder, augmentation and training recipe without the package
    __init__ files (which load TensorFlow): stub the packages so only the backend-free modules
    are read. The recipe (config, compile, distillation targets, the mirror-averaged decision)
    is gimefive_tf.training's and gimefive_tf.inference's, as on the CPU."""
    import types

    for name, folder in (("gimefive_tf", ""), ("gimefive_tf.models", "models"),
                         ("gimefive_tf.data", "data"), ("gimefive_tf.training", "training")):
        module = types.ModuleType(name)
        module.__path__ = [os.path.join(REPO, "gimefive_tf", folder)]
        sys.modules[name] = module
    from gimefive_tf.data.augment import AugmentConfig, image_augmentation, with_augmentation
    from gimefive_tf.inference import Predictor
    from gimefive_tf.models.gimefive import build_gimefive
    from gimefive_tf.training.config import TrainConfig
    from gimefive_tf.training.recipe import compile_for_training
    from gimefive_tf.training.teachers import distillation_targets

    return types.SimpleNamespace(
        build_gimefive=build_gimefive, AugmentConfig=AugmentConfig,
        image_augmentation=image_augmentation, with_augmentation=with_augmentation,
        Predictor=Predictor, TrainConfig=TrainConfig, compile_for_training=compile_for_training,
        distillation_targets=distillation_targets)


def load_pack(path, limit=None):
    """(train images, train labels, val images, val labels): uint8 RGB, as the model takes
    (its Preprocess layer makes them grayscale). `limit`: a seeded random few, for dry runs."""
    import io

    from PIL import Image

    pack = np.load(path)
    labels, validation = pack["labels"].astype(np.int64), pack["is_validation"]
    train, val = np.flatnonzero(~validation), np.flatnonzero(validation)
    if limit:
        rng = np.random.default_rng(0)
        train, val = rng.permutation(train)[:limit], rng.permutation(val)[:max(limit // 4, 64)]
    encoded, offsets = pack["encoded"], pack["offsets"]

    def decode(indices):
        return np.stack([np.asarray(Image.open(io.BytesIO(
            encoded[offsets[i]:offsets[i + 1]].tobytes())).convert("RGB").resize((64, 64)))
            for i in indices])

    return decode(train), labels[train], decode(val), labels[val]


def run_job(job):
    import keras

    code = import_model_code()
    check_accelerator(keras.config.backend(), job["allow_cpu"])
    keras.utils.set_random_seed(job["seed"])
    work = job["work"]
    x_train, y_train, x_val, y_val = load_pack(os.path.join(job["data_dir"],
                                                            job["data"] + ".npz"), job["limit"])
    model = code.build_gimefive()
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    if trainable != PARAMETERS:
        raise SystemExit(f"model has {trainable} trainable parameters, not {PARAMETERS}")
    # the run's recipe as a TrainConfig: SGD at the job's rate (the deadline callback below
    # anneals it by the clock), Keras' label-smoothed cross-entropy, the distillation blend
    config = code.TrainConfig(data=job["data"], batch_size=job["batch"], optimizer="sgd",
                              learning_rate=job["lr"], momentum=job["momentum"],
                              weight_decay=job["weight_decay"],
                              label_smoothing=job["label_smoothing"], augment=job["augment"],
                              teacher_weight=job.get("teacher_weight", 0.5), seed=job["seed"])
    targets = np.eye(6, dtype="float32")[y_train]
    if job.get("distill_from"):
        best = max(job["distill_from"], key=lambda name: read_json(work, name)["val_accuracy"])
        set_weights(model, np.load(os.path.join(work, best + ".npz")))
        job["init_from"] = best
        taught = np.mean([np.load(os.path.join(work, name + ".train_probs.npy"))
                          for name in job["distill_from"]], axis=0)
        targets = code.distillation_targets(y_train, taught, config.teacher_weight)
    augmentation = code.image_augmentation(code.AugmentConfig(**config.augment), 64,
                                           seed=config.seed)
    jax = keras.config.backend() == "jax"
    for layer in augmentation.layers:
        layer.supports_jit = jax  # see jit_compile below
    training = code.with_augmentation(model, augmentation)
    # RandomRotation and RandomTranslation say supports_jit=False (for TensorFlow), which
    # makes "auto" run every step op by op: on the GPU 0.4 s a step, the chip 1% busy.
    # Their JAX code is plain jnp (map_coordinates), so the step is compiled whole.
    code.compile_for_training(training, config, steps_per_epoch=None, jit_compile=jax)
    path = os.path.join(work, job["name"])
    keeper = best_epoch_callback(model, path, job, jit=training.jit_compile)
    training.fit(x_train, targets, batch_size=job["batch"], epochs=100_000, shuffle=True,
                 validation_data=(x_val, np.eye(6, dtype="float32")[y_val]),
                 callbacks=[keeper], verbose=0)
    set_weights(model, np.load(path + ".npz"))
    # the crops alone, and the face pipeline's mirror-averaged decision (gimefive_tf.decision)
    val_probs = np.stack([code.Predictor(model, mirror=mirror)(x_val) for mirror in (False, True)])
    np.save(path + ".val_probs.npy", val_probs)
    if job.get("predict_train"):
        np.save(path + ".train_probs.npy", code.Predictor(model, mirror=True)(x_train))
    write_json(path + ".json", {
        **keeper.record(), "final": True,
        "val_accuracy": float(np.mean(val_probs[0].argmax(1) == y_val)),
        "val_accuracy_mirrored": float(np.mean(val_probs[1].argmax(1) == y_val)),
        "train_images": len(x_train), "val_images": len(x_val), "val_labels": y_val.tolist()})


def check_accelerator(backend, allow_cpu):
    """Exit with NO_GPU (so the orchestrator tries the other backend) when the backend sees no
    GPU, unless a dry run allows the CPU."""
    if backend == "jax":
        import jax

        devices = [str(device) for device in jax.devices()]
        found = jax.default_backend() == "gpu"
    else:
        import torch

        found = torch.cuda.is_available()
        devices = [torch.cuda.get_device_name(0)] if found else ["cpu"]
    print(f"{backend}: {', '.join(devices)}", flush=True)
    if not found and not allow_cpu:
        print(f"{backend} sees no GPU", flush=True)
        sys.exit(NO_GPU)


def best_epoch_callback(model, path, job, jit):
    """A callback that sets the time-based cosine rate, saves each new best validation epoch
    (weights and a provisional record, so a killed run still counts), and stops when one more
    epoch and the predictions after training would overrun the deadline."""
    import keras

    class BestEpoch(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.deadline = job["origin"] + job["deadline"]
            self.after_training = 25 if job.get("predict_train") else 10  # seconds
            self.epoch_start = self.first_epoch_end = None
            self.best, self.best_epoch, self.history, self.epoch_seconds = -1.0, 0, [], []

        def on_epoch_begin(self, epoch, logs=None):
            now = time.time()
            self.epoch_start = now
            anneal_from = self.first_epoch_end or now  # epoch 1 (compiling) runs at the full rate
            spent = (now - anneal_from) / max(self.deadline - anneal_from, 1e-9)
            rate = 0.5 * job["lr"] * (1 + math.cos(math.pi * min(max(spent, 0.0), 1.0)))
            self.model.optimizer.learning_rate = rate

        def on_epoch_end(self, epoch, logs=None):
            now = time.time()
            self.epoch_seconds.append(now - self.epoch_start)
            if self.first_epoch_end is None:
                self.first_epoch_end = now
            accuracy = float(logs["val_accuracy"])
            self.history.append({"epoch": epoch + 1, "val_accuracy": accuracy,
                                 "accuracy": float(logs["accuracy"]), "loss": float(logs["loss"]),
                                 "val_loss": float(logs["val_loss"]),
                                 "lr": float(np.asarray(self.model.optimizer.learning_rate))})
            if accuracy > self.best:
                self.best, self.best_epoch = accuracy, epoch + 1
                save_weights(model, path + ".npz")
                write_json(path + ".json", {**self.record(), "final": False,
                                            "val_accuracy": accuracy})
            typical = float(np.median(self.epoch_seconds[1:] or self.epoch_seconds))
            print(f"{job['name']} epoch {epoch + 1} val {accuracy:.4f} best {self.best:.4f} "
                  f"({now - job['origin']:.0f}s, epoch {self.epoch_seconds[-1]:.1f}s)",
                  flush=True)
            if now + typical + self.after_training > self.deadline:
                self.model.stop_training = True

        def record(self):
            return {"job": job, "backend": keras.config.backend(), "jit_compile": jit,
                    "epochs": len(self.history), "best_epoch": self.best_epoch,
                    "best_logged_val_accuracy": self.best, "history": self.history,
                    "median_epoch_seconds": float(np.median(self.epoch_seconds[1:] or [0]))}

    return BestEpoch()


def save_weights(model, path):
    """Every variable (index|Keras path), float32, written atomically."""
    arrays = {f"{index:03d}|{variable.path}": np.asarray(variable.numpy())
              for index, variable in enumerate(model.weights)}
    np.savez(path + ".tmp.npz", **arrays)
    os.replace(path + ".tmp.npz", path)


def set_weights(model, archive):
    names = sorted(archive.files)
    if [name.split("|", 1)[1] for name in names] != [v.path for v in model.weights]:
        raise SystemExit("weight file does not match the model's variables")
    model.set_weights([archive[name] for name in names])


# ---------------------------------------------------------- the orchestrator (all of them) ---

def export_weights(source, out, name):
    """Write a model's weights as <name>.partN.npz files under PART_BYTES: kernels as float16
    (4 bytes to 2 a weight, so two or three models fit what the machine returns), the rest
    float32. Each part names its run, so parts of different runs are never loaded together."""
    archive = np.load(source)
    parts, sizes = [{}], [0]
    for key in sorted(archive.files, key=lambda k: -archive[k].size):
        array = archive[key]
        array = array.astype(np.float16) if array.ndim >= 2 else array.astype(np.float32)
        target = next((i for i, size in enumerate(sizes) if size + array.nbytes < PART_BYTES),
                      None)
        if target is None:
            parts.append({})
            sizes.append(0)
            target = len(parts) - 1
        parts[target][key] = array
        sizes[target] += array.nbytes
    files = []
    for index, part in enumerate(parts):
        files.append(os.path.join(out, f"{name}.part{index}.npz"))
        np.savez(files[-1], __run__=np.array(f"{name}:{len(parts)}"), **part)
    return files


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder with rafdb.npz and fer2013.npz")
    parser.add_argument("--out", required=True,
                        help="folder for the returned files (write nothing else there: the "
                             f"machine returns at most {MAX_FILES} files)")
    parser.add_argument("--budget", type=float, default=480, help="seconds for all training")
    parser.add_argument("--grace", type=float, default=40,
                        help="seconds after the budget before late runs are stopped")
    parser.add_argument("--models", type=int, default=2,
                        help="models to return: the best of each dataset, then the next best")
    parser.add_argument("--only", help="comma-separated job names to run (default: all)")
    parser.add_argument("--limit", type=int, default=None, help="images per set (a dry run)")
    parser.add_argument("--allow-cpu", action="store_true", help="run without a GPU (a dry run)")
    parser.add_argument("--work", help="scratch folder (default: a new temporary one)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return run_job(json.loads(args.worker))
    if 2 * args.models + 2 > MAX_FILES:
        parser.error(f"--models {args.models} needs more than the {MAX_FILES} files returned")

    origin = time.time()
    work = os.path.abspath(args.work or tempfile.mkdtemp(prefix="gimefive-work-"))
    os.makedirs(work, exist_ok=True)
    if os.listdir(work):
        parser.error(f"--work {work} is not empty")
    os.makedirs(args.out, exist_ok=True)
    log = open(os.path.join(args.out, "train_log.txt"), "a")
    phase1, student = plan(args.budget, args.limit)
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {job["name"] for job in phase1 + [student]}
        if unknown:
            parser.error(f"--only: no job named {', '.join(sorted(unknown))}")
        phase1 = [job for job in phase1 if job["name"] in wanted]
        if student["name"] not in wanted:
            student = None
            phase1 = [{**job, "deadline": args.budget} for job in phase1]  # the whole budget
        elif not set(student["distill_from"]) & wanted:
            parser.error(f"--only: {student['name']} needs one of its teachers")
    common = {"data_dir": os.path.abspath(args.data), "work": work, "origin": origin,
              "allow_cpu": args.allow_cpu}
    jobs = {job["name"]: {**job, **common} for job in phase1 + ([student] if student else [])}
    running = {name: launch(jobs[name], log) for name in (job["name"] for job in phase1)}
    while running:
        time.sleep(2)
        elapsed = time.time() - origin
        for name, process in list(running.items()):
            if process.poll() is None:
                continue
            del running[name]
            note(log, origin, f"{name} exited {process.returncode}")
            if process.returncode == NO_GPU and jobs[name].get("backend", "jax") == "jax":
                jobs[name]["backend"] = "torch"  # JAX sees no GPU here: try PyTorch
                running[name] = launch(jobs[name], log)
        if student and student["name"] not in running and \
                not any(n in running for n in student["distill_from"]):
            teachers = [n for n in student["distill_from"] if (read_json(work, n) or {})
                        .get("final")]
            if teachers and args.budget - elapsed > STUDENT_MIN_SHARE * args.budget:
                jobs[student["name"]]["distill_from"] = teachers
                running[student["name"]] = launch(jobs[student["name"]], log)
            else:
                note(log, origin, f"{student['name']} not started: teachers {teachers}, "
                                  f"{args.budget - elapsed:.0f}s left")
            student = None
        if elapsed > args.budget + args.grace:  # late runs: stop them, keep their best epoch
            stop(running.values())
            break
    results = summarize(work, args.out, list(jobs), args.models, origin, log)
    if not results["runs"]:
        sys.exit("no run produced a model; see train_log.txt")


def note(log, origin, text):
    print(f"[{time.time() - origin:.0f}s] {text}", file=log, flush=True)


def launch(job, log):
    backend = job.get("backend", "jax")
    env = {**os.environ, "KERAS_BACKEND": backend, "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
           "PYTHONUNBUFFERED": "1"}
    note(log, job["origin"], f"start {job['name']} on {backend}")
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), "--data", job["data_dir"],
                             "--out", job["work"], "--worker", json.dumps(job)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)


def stop(processes, wait=5):
    for process in processes:
        process.send_signal(signal.SIGTERM)
    deadline = time.time() + wait
    for process in processes:
        try:
            process.wait(max(deadline - time.time(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()


def summarize(work, out, names, models, origin, log):
    """results.json (every run's record, the ensembles') and the best models' weight files."""
    records = {name: read_json(work, name) for name in names}
    records = {name: record for name, record in records.items() if record}
    results = {"work": work, "runs": records, "files": {}}
    for data in ("rafdb", "fer2013"):
        finished = [n for n, r in records.items() if r["job"]["data"] == data and r["final"]]
        if len(finished) > 1:
            probs = np.mean([np.load(os.path.join(work, n + ".val_probs.npy"))[0]
                             for n in finished], axis=0)
            labels = np.asarray(records[finished[0]]["val_labels"])
            results[f"{data}_ensemble_val_accuracy"] = float(np.mean(probs.argmax(1) == labels))
    ranked = sorted(records, key=lambda n: -records[n]["val_accuracy"])
    chosen = [n for n in (next((n for n in ranked if records[n]["job"]["data"] == d), None)
                          for d in ("rafdb", "fer2013")) if n]
    chosen = (chosen + [n for n in ranked if n not in chosen])[:models]
    for name in chosen:
        results["files"][name] = [os.path.basename(f) for f in
                                  export_weights(os.path.join(work, name + ".npz"), out, name)]
    results["seconds"] = time.time() - origin
    write_json(os.path.join(out, "results.json"), results)
    note(log, origin, json.dumps({n: (r["val_accuracy"], r.get("val_accuracy_mirrored"),
                                      r["epochs"]) for n, r in records.items()}))
    return results


def read_json(work, name):
    path = os.path.join(work, name + ".json")
    return json.load(open(path)) if os.path.exists(path) else None


def write_json(path, value):
    with open(path + ".tmp", "w") as handle:
        json.dump(value, handle, indent=1, default=str)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
