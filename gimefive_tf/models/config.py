"""GiMeFiveConfig: every knob of the paper's architecture search (Table 4) in one validated record."""

import dataclasses

from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.labels import NUM_CLASSES
from gimefive_tf.choices import ACTIVATIONS, POOLINGS, check_choice, check_rate

CONV_DEPTHS = (1, 2, 3, 4, 5, 6)
FC_DEPTHS = (1, 2, 3)


@dataclasses.dataclass(frozen=True)
class GiMeFiveConfig:
    """Architecture of a GiMeFive-family network.

    conv_depth: conv stages of widths base_filters * 2**i (the paper: 4, 5 or 6).
    fc_depth: dense layers in the head; the hidden widths are 2C then C, C the last conv width.
    batch_norm: batch norm after each conv.
    pooling: 2x2 stage pooling, "max" or "avg" (the paper's adaptive average).
    activation: relu, tanh, elu or gelu, for conv stages and hidden dense layers.
    dropout: after each conv stage but the last (which feeds global pooling), as the reference.
    head_dropout: after the first hidden dense layer.
    se: squeeze-excite after the first stage (the "+SE" rows of Table 2).
    residual: a stem conv then stride-2 residual blocks instead of plain conv stages.
    """

    conv_depth: int = 5
    fc_depth: int = 3
    batch_norm: bool = True
    pooling: str = "max"
    activation: str = "relu"
    dropout: float = 0.2
    head_dropout: float = 0.5
    se: bool = False
    se_reduction: int = 16
    residual: bool = False
    base_filters: int = 64
    num_classes: int = NUM_CLASSES
    input_size: int = 64

    def __post_init__(self):
        check_choice("conv_depth", self.conv_depth, CONV_DEPTHS)
        check_choice("fc_depth", self.fc_depth, FC_DEPTHS)
        check_choice("pooling", self.pooling, POOLINGS)
        check_choice("activation", self.activation, ACTIVATIONS)
        for name in ("batch_norm", "se", "residual"):
            check_choice(name, getattr(self, name), (True, False))
        check_rate("dropout", self.dropout)
        check_rate("head_dropout", self.head_dropout)
        _check_int("se_reduction", self.se_reduction, 1)
        _check_int("base_filters", self.base_filters, 1)
        _check_int("num_classes", self.num_classes, 2)
        _check_int("input_size", self.input_size, 2 ** self.conv_depth)

    @property
    def stage_widths(self):
        """Output width of each conv stage (residual: of each residual block after the stem)."""
        first = 1 if self.residual else 0
        return tuple(self.base_filters * 2 ** (i + first) for i in range(self.conv_depth))

    @property
    def dense_widths(self):
        """Widths of the hidden dense layers: 2C, then C (C = last stage width)."""
        last = self.stage_widths[-1]
        return (2 * last, last)[: self.fc_depth - 1]

    def replace(self, **overrides):
        """A new config with some fields changed; unknown names raise GiMeFiveError."""
        unknown = sorted(set(overrides) - set(field_names()))
        if unknown:
            raise GiMeFiveError(
                f"unknown model option(s) {', '.join(unknown)}; "
                f"known options: {', '.join(field_names())}"
            )
        return dataclasses.replace(self, **overrides)

    def to_dict(self):
        return dataclasses.asdict(self)


def field_names():
    return tuple(f.name for f in dataclasses.fields(GiMeFiveConfig))


def _check_int(field, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise GiMeFiveError(f"{field}={value!r} is not allowed; use an integer >= {minimum}")
