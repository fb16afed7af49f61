"""Allowed values of the model knobs and their checks, without Keras: configs, the search space
and command lines validate with these before anything heavy loads (`--help` stays instant)."""

from gimefive_tf.errors import GiMeFiveError

ACTIVATIONS = ("relu", "tanh", "elu", "gelu")
POOLINGS = ("max", "avg")
LAYOUTS = ("csv", "folders", "rafdb", "fer2013")  # dataset layouts gimefive_tf.data reads
FER2013_USAGES = ("Training", "PublicTest", "PrivateTest")  # fer2013.csv's Usage column


def check_choice(field, value, allowed):
    """Raise GiMeFiveError naming `field` and the allowed values when `value` is not one of them."""
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise GiMeFiveError(f"{field}={value!r} is not allowed; choose one of {choices}")
    return value


def check_rate(field, value):
    """Raise GiMeFiveError unless `value` is a dropout-like rate in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise GiMeFiveError(f"{field}={value!r} is not allowed; use a number in [0, 1)")
    return float(value)
