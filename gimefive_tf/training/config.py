"""The run's configuration: every option a training run depends on, with the paper's defaults,
saved as config.yaml in its run directory."""

import dataclasses

from gimefive_tf.data.augment import AugmentConfig
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.choices import check_choice
from gimefive_tf.models.presets import available, get_preset

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "cosine", "plateau")
DISTRIBUTIONS = ("none", "mirrored", "multi-worker")  # how the run is spread (recipe.py)


@dataclasses.dataclass
class TrainConfig:
    """Everything a run depends on; saved as config.yaml in the run directory."""

    data: str
    model: str = "gimefive"
    model_options: dict = dataclasses.field(default_factory=dict)
    layout: str = None
    split: str = None
    val_data: str = None
    val_split: float = 0.1
    test_data: str = None
    limit: int = None  # train on a seeded random subset of this many images (quick runs)
    epochs: int = 80
    batch_size: int = 16
    optimizer: str = "sgd"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    ema: float = 0.0  # momentum of an exponential moving average of the weights; 0: none
    class_weights: bool = False
    schedule: str = "none"
    early_stopping: bool = True
    patience: int = 15
    augment: dict = dataclasses.field(default_factory=dict)
    init_from: str = None
    # distillation: train on (1 - teacher_weight) * the labels + teacher_weight * the teachers'
    # mean probabilities for each training image (mirror-averaged; see training/teachers.py)
    teachers: list = dataclasses.field(default_factory=list)
    teacher_weight: float = 0.5
    seed: int = 0
    distribution: str = "none"  # how, not what: a run may resume under another one

    def __post_init__(self):
        check_choice("model", self.model, available())
        check_choice("distribution", self.distribution, DISTRIBUTIONS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        for name, minimum in (("epochs", 1), ("batch_size", 1), ("patience", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise GiMeFiveError(f"{name}={value!r} is not allowed; use an integer >= {minimum}")
        if self.limit is not None and (isinstance(self.limit, bool)
                                       or not isinstance(self.limit, int) or self.limit < 1):
            raise GiMeFiveError(f"limit={self.limit!r} is not allowed; use an integer >= 1")
        for name in ("learning_rate", "momentum", "weight_decay", "label_smoothing", "ema"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise GiMeFiveError(f"{name}={value!r} is not allowed; use a number >= 0")
        if self.label_smoothing >= 1:
            raise GiMeFiveError("label_smoothing must be below 1")
        if self.ema >= 1:
            raise GiMeFiveError("ema must be below 1 (a momentum such as 0.999; 0 for none)")
        if not isinstance(self.teachers, list) or not all(
                isinstance(teacher, str) and teacher for teacher in self.teachers):
            raise GiMeFiveError("teachers must be a list of trained models (.keras files or "
                                "shipped names)")
        if isinstance(self.teacher_weight, bool) or \
                not isinstance(self.teacher_weight, (int, float)) or \
                not 0 <= self.teacher_weight <= 1:
            raise GiMeFiveError(f"teacher_weight={self.teacher_weight!r} is not allowed; use a "
                                "fraction in [0, 1]")
        if self.class_weights and self.teachers and self.teacher_weight > 0.5:
            # Keras weighs a soft target by its largest entry: past 0.5 that may be the
            # teachers' class rather than the label's
            raise GiMeFiveError("class_weights needs teacher_weight <= 0.5 (each image is "
                                "weighed by its target's top class, which must be its label's)")
        if self.val_data is None and not 0 < self.val_split < 1:
            raise GiMeFiveError(f"val_split={self.val_split!r} is not allowed; use a fraction "
                                "in (0, 1) or pass val_data")
        if not isinstance(self.model_options, dict):
            raise GiMeFiveError("model_options must be a mapping of model config fields")
        get_preset(self.model).resolve(**self.model_options)  # validates the model options
        self.augment_config()  # validates

    def augment_config(self):
        unknown = set(self.augment) - {f.name for f in dataclasses.fields(AugmentConfig)}
        if unknown:
            raise GiMeFiveError(f"unknown augment option(s) {', '.join(sorted(unknown))}")
        return AugmentConfig(**self.augment)

    @classmethod
    def defaults(cls):
        """Each option's default: what a run saved before the option existed (e.g. ema) ran."""
        return {f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING
                else f.default for f in dataclasses.fields(cls) if f.name != "data"}

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values, source="config"):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise GiMeFiveError(f"{source}: unknown option(s) {', '.join(unknown)}; known: "
                                f"{', '.join(sorted(known))}")
        if "data" not in values or not values["data"]:
            raise GiMeFiveError(f"{source}: no training data; pass DATA (a dataset folder or "
                                "labels CSV)")
        return cls(**values)
