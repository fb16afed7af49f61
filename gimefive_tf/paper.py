"""The paper's tables with our numbers beside its numbers (notebook 03_reproduce_the_paper).

Only figures the paper (or the dataset's own authors) publish are written here; a cell the
paper leaves empty stays empty rather than being filled with a guess.
"""

import pathlib

import numpy as np

from gimefive_tf.labels import EMOTIONS

# The accuracy the paper reports for its 15-layer GiMeFive (first / final version), in %.
REPORTED_ACCURACY = {"RAF-DB": (83.1, 86.5), "FER2013": (65.6, 67.5)}
# Trainable parameters of the paper's Table 2 networks (our zoo builds them exactly).
REPORTED_PARAMS = {
    "baseline": 2_606_086, "gimefive": 10_478_086, "gimefive_se": 10_478_598,
    "gimefive_nobn": 10_474_118, "gimefive_deep": 41_950_726, "gimefive_res": 95_051_014,
    "vgg": 72_460_742, "resnet18": 11_179_590, "resnet34": 21_287_750,
}
# Images per emotion in the datasets' published six-emotion splits (neutral left out): RAF-DB's
# basic set (train/test) and FER2013's Training usage, as their authors distribute them (the
# shared FER2013 copy holds two fewer: one happiness and one anger image are not in it).
PUBLISHED_SPLITS = {
    ("RAF-DB", "train"): dict(zip(EMOTIONS, (4772, 1290, 1982, 705, 717, 281))),
    ("RAF-DB", "test"): dict(zip(EMOTIONS, (1185, 329, 478, 162, 160, 74))),
    ("FER2013", "train"): dict(zip(EMOTIONS, (7215, 3171, 4830, 3995, 436, 4097))),
}


def table1(datasets):
    """Dataset statistics: images per emotion of each dataset read here ({name: LabeledImages
    of its train split}), beside the published split's counts."""
    import pandas as pd

    rows = []
    for name, table in datasets.items():
        ours = table.per_class()
        published = PUBLISHED_SPLITS.get((name, "train"), {})
        rows.append({"dataset": name, "source": "ours (read here)", **ours, "total": len(table)})
        if published:
            rows.append({"dataset": name, "source": "published train split", **published,
                         "total": sum(published.values())})
    return pd.DataFrame(rows).set_index(["dataset", "source"])


def table2(trained=None):
    """The zoo: paper depth, our and the paper's parameter counts, GFLOPs, and accuracy where a
    model exists ({preset: (data, accuracy %)}); the rest get the option of
    `python -m gimefive_tf.train DATA` that trains them."""
    import pandas as pd

    from gimefive_tf.models import available, create_model, get_preset
    from gimefive_tf.models.summary import describe

    trained = trained or {}
    rows = []
    for name in available():
        row = describe(create_model(name), get_preset(name))
        data, accuracy = trained.get(name, (None, None))
        rows.append({"model": name, "paper row": row["paper_row"], "layers": row["layers"],
                     "params": row["params"], "paper params": REPORTED_PARAMS.get(name),
                     "GFLOPs": row["gflops"], "ours: accuracy %": accuracy, "on": data,
                     "train with": None if accuracy is not None else f"--architecture {name}"})
    return pd.DataFrame(rows).set_index("model")


def accuracy_table(measured):
    """Our accuracy ({dataset: %}) beside the paper's first and final versions."""
    import pandas as pd

    return pd.DataFrame([{"dataset": name, "paper (first)": REPORTED_ACCURACY[name][0],
                          "paper (final)": REPORTED_ACCURACY[name][1], "ours": measured.get(name)}
                         for name in REPORTED_ACCURACY]).set_index("dataset")


def table3(names, probabilities, labels=None):
    """Classification scores of sample images: one row per image, the six scores in %, the
    prediction and (when known) the true emotion."""
    import pandas as pd

    probabilities = np.asarray(probabilities)
    frame = pd.DataFrame((probabilities.astype(float) * 100).round(1), columns=EMOTIONS,
                         index=list(names))
    frame.insert(0, "predicted", [EMOTIONS[i] for i in probabilities.argmax(1)])
    if labels is not None:
        frame.insert(0, "true", [EMOTIONS[int(i)] for i in labels])
    return frame


def table4(space="table4.yaml"):
    """The search space: each hyperparameter and its choices (`tuning/<space>`)."""
    import pandas as pd

    from gimefive_tf.tuning.space import SPACES_DIR, load_space

    loaded = load_space(SPACES_DIR / space if not pathlib.Path(space).is_file() else space)
    return pd.DataFrame([{"hyperparameter": name, "choices": ", ".join(map(str, choices)),
                          "count": len(choices)} for name, choices in loaded.items()]
                        ).set_index("hyperparameter")


def one_per_emotion(table, seed=0):
    """Indices of one image of each emotion in a labeled table (seeded), in EMOTIONS order:
    the sample images of Table 3 and the Grad-CAM figure."""
    rng = np.random.default_rng(seed)
    labels = table.labels
    return [int(rng.choice(np.flatnonzero(labels == i))) for i in range(len(EMOTIONS))
            if (labels == i).any()]
