"""The model zoo: the paper's Table 2 networks as named presets.

GiMeFive variants are configs of one builder, differing by knobs as the paper's text says; VGG and
ResNet are the paper's comparison baselines with their own small builders.
"""

import dataclasses
import inspect

from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.models.config import GiMeFiveConfig


def _builder(name):
    """The builder function called `name` ("gimefive", "vgg", "resnet"), imported (with Keras)
    only when a model is built: listing the presets stays light."""
    import importlib

    return getattr(importlib.import_module(f"gimefive_tf.models.{name}"), f"build_{name}")


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named network: how to build it and where it stands in the paper."""

    name: str
    builder: str  # "gimefive", "vgg" or "resnet": gimefive_tf.models.<builder>.build_<builder>
    paper_row: str
    paper_layers: int
    description: str
    config: dict = dataclasses.field(default_factory=dict)

    def resolve(self, **overrides):
        """The builder's arguments with `overrides` applied, validated without building.

        GiMeFive presets return a GiMeFiveConfig; the others a dict of builder arguments.
        """
        if self.builder == "gimefive":
            return GiMeFiveConfig(**self.config).replace(**overrides)
        allowed = [p for p in inspect.signature(_builder(self.builder)).parameters
                   if p != "name"]
        unknown = sorted(set(overrides) - set(allowed))
        if unknown:
            raise GiMeFiveError(
                f"preset {self.name!r} has no option(s) {', '.join(unknown)}; "
                f"its options: {', '.join(allowed)}"
            )
        return {**self.config, **overrides}

    def build(self, **overrides):
        """Build the network, with any builder or config field overridden."""
        arguments = self.resolve(**overrides)
        build = _builder(self.builder)
        if isinstance(arguments, GiMeFiveConfig):
            return build(arguments, name=self.name)
        return build(**arguments, name=self.name)


_PRESETS = {}


def register(preset):
    """Add a preset to the registry (names are unique)."""
    if preset.name in _PRESETS:
        raise GiMeFiveError(f"a preset named {preset.name!r} is already registered")
    _PRESETS[preset.name] = preset
    return preset


def available():
    """Names of all registered presets, in registration order."""
    return tuple(_PRESETS)


def get_preset(name):
    """The preset called `name`; GiMeFiveError listing the choices otherwise."""
    try:
        return _PRESETS[name]
    except (KeyError, TypeError):
        raise GiMeFiveError(
            f"unknown model {name!r}; choose one of {', '.join(available())}"
        ) from None


def create_model(name="gimefive", **overrides):
    """Build preset `name`; keyword arguments override its config (e.g. conv_depth=4)."""
    return get_preset(name).build(**overrides)


for _preset in (
    Preset("baseline", "gimefive", "GiMeFive 13 layers +BN-SE", 13,
           "four conv stages 64-512, dense 1024-512-6", {"conv_depth": 4}),
    Preset("gimefive", "gimefive", "GiMeFive 15 layers +BN-SE", 15,
           "the paper's best model: five conv stages 64-1024, dense 2048-1024-6"),
    Preset("gimefive_se", "gimefive", "16 layers +BN+SE", 16,
           "gimefive with squeeze-excite after the first stage", {"se": True}),
    Preset("gimefive_nobn", "gimefive", "10 layers -BN-SE", 10,
           "gimefive without batch norm", {"batch_norm": False}),
    Preset("gimefive_deep", "gimefive", "17 layers +BN-SE", 17,
           "six conv stages 64-2048, dense 4096-2048-6", {"conv_depth": 6}),
    Preset("gimefive_res", "gimefive", "25 layers +BN+SE+RB", 25,
           "stem conv + SE, five stride-2 residual blocks 128-2048, dense 4096-2048-6",
           {"residual": True, "se": True}),
    Preset("vgg", "vgg", "VGG +BN", 9,
           "VGG9 (6 conv + 3 dense weight layers, VGG naming): one shared BN per stage,"
           " dense 4096-1024-6"),
    Preset("resnet18", "resnet", "ResNet18", 18, "torchvision ResNet18, 6-way head",
           {"depth": 18}),
    Preset("resnet34", "resnet", "ResNet34", 34, "torchvision ResNet34, 6-way head",
           {"depth": 34}),
):
    register(_preset)
