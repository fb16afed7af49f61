"""Distillation targets: what trained models (an ensemble of earlier runs, say) say about each
training image, blended with its label.

The teachers score each training image once, unaugmented and mirror-averaged, before training
starts (offline distillation); the student then learns from those targets on its augmented
views. Scoring them at every step instead would add each teacher's forward pass, about a third
of a training step, to every step. The probabilities are kept in the run directory, so a resumed run trains
on exactly the same targets without scoring again.
"""

import numpy as np

from gimefive_tf.errors import GiMeFiveError

PROBABILITIES_FILE = "teacher_probabilities.npy"


def load_teachers(names, image_size, num_classes):
    """The teachers' inference models, each checked to take the student's input and classes."""
    from gimefive_tf.loading import load_model
    from gimefive_tf.training.recipe import inference_part

    teachers = []
    for name in names:
        model = inference_part(load_model(name))  # a missing file: one line (model_file)
        if tuple(model.input_shape[1:3]) != (image_size, image_size) or \
                model.output_shape[-1] != num_classes:
            raise GiMeFiveError(f"teacher {name} takes {model.input_shape[1]}x"
                                f"{model.input_shape[2]} images and gives "
                                f"{model.output_shape[-1]} classes; the model trained here takes "
                                f"{image_size}x{image_size} and gives {num_classes}")
        teachers.append(model)
    return teachers


def check_teachers(config):
    """Refuse, before the run directory is made, teachers that do not fit the model to train."""
    if config.teachers:
        from gimefive_tf.models import create_model

        student = create_model(config.model, **config.model_options)
        load_teachers(config.teachers, student.input_shape[1], student.output_shape[-1])


def teacher_probabilities(teachers, images):
    """(N, classes): the mean over the teachers of each image's mirror-averaged probabilities."""
    from gimefive_tf.inference import Predictor

    return np.mean([Predictor(teacher, mirror=True)(images) for teacher in teachers], axis=0)


def saved_teacher_probabilities(folder):
    """The probabilities a run in `folder` saved, or None (none saved, or an unreadable file:
    then they are scored again)."""
    path = folder / PROBABILITIES_FILE
    try:
        return np.load(path) if path.is_file() else None
    except (ValueError, OSError):
        return None


def distillation_targets(labels, probabilities, weight):
    """(1 - weight) * one-hot labels + weight * the teachers' probabilities."""
    probabilities = np.asarray(probabilities, np.float32)
    one_hot = np.eye(probabilities.shape[1], dtype=np.float32)[np.asarray(labels)]
    return (1 - weight) * one_hot + weight * probabilities


def run_targets(config, train_table, image_size, num_classes, source, run):
    """(the run's distillation targets, the share of training labels the teachers agree with),
    or (None, None) without teachers. The teachers' probabilities are read from `source` (a
    run being resumed) or computed and saved in `run`."""
    if not config.teachers:
        return None, None
    probabilities = saved_teacher_probabilities(source)
    if probabilities is None or probabilities.shape != (len(train_table), num_classes):
        from gimefive_tf.data import load_arrays
        from gimefive_tf.outputs import atomic_path

        teachers = load_teachers(config.teachers, image_size, num_classes)
        images, _ = load_arrays(train_table, image_size)
        probabilities = teacher_probabilities(teachers, images).astype(np.float32)
        with atomic_path(run / PROBABILITIES_FILE) as temporary:
            with open(temporary, "wb") as handle:
                np.save(handle, probabilities)
    agreement = float(np.mean(probabilities.argmax(1) == np.asarray(train_table.labels)))
    return distillation_targets(train_table.labels, probabilities, config.teacher_weight), \
        agreement
