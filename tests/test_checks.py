"""The one rule that turns a user's key=value text (or a Python value) into a parameter's type."""

from __future__ import annotations

import numpy as np
import pytest

from synthmarket.checks import MAX_SEED, check_seed, coerce_like, split_key_value, type_word
from synthmarket.errors import ConfigError


@pytest.mark.parametrize(
    "value, default, expected",
    [
        ("10", 5, 10),
        ("1e3", 5, 1000),
        (" 7 ", 5, 7),
        (np.int64(3), 5, 3),
        ("0.5", 1.0, 0.5),
        (2, 1.0, 2.0),
        (np.float32(0.25), 1.0, 0.25),
        ("yes", False, True),
        ("Off", True, False),
        ("y", False, True),
        ("0", True, False),
        (True, False, True),
        ("1,3,9", "1,2", "1,3,9"),
        ("a b", "x", "a b"),
        ("[1, 2]", None, [1, 2]),
        ("20.0", None, 20.0),
        ("bt.ind.EMA", None, "bt.ind.EMA"),
    ],
)
def test_values_take_the_type_of_their_default(value, default, expected):
    got = coerce_like(value, default)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    "value, default",
    [
        ("ten", 5),
        ("2.5", 5),
        (2.5, 5),
        (True, 5),
        ("maybe", False),
        (1, False),
        ("x", 1.0),
        (True, 1.0),
        (3, "text"),
    ],
)
def test_values_that_do_not_fit_are_refused(value, default):
    with pytest.raises(ValueError):
        coerce_like(value, default)


def test_words_for_types_and_key_values():
    assert [type_word(d) for d in (True, 1, 1.0, "s")] == ["true or false", "a whole number", "a number", "text"]
    assert split_key_value(" fast = 10 ") == ("fast", "10")
    for bad in ("fast", "=10"):
        with pytest.raises(ValueError):
            split_key_value(bad)


def test_seeds():
    assert check_seed(None) is None and check_seed(np.int64(7)) == 7 and check_seed(MAX_SEED) == MAX_SEED
    for bad in (-1, MAX_SEED + 1, 1.5, True, "3"):
        with pytest.raises(ConfigError, match="seed must be a whole number"):
            check_seed(bad)


def test_json_files_name_classes_and_functions_by_reference():
    import json

    import backtrader as bt

    from synthmarket.jsonutil import json_default

    assert json.loads(
        json.dumps({"ma": bt.ind.EMA, "n": np.int64(3), "a": np.arange(2), "cls": np.ndarray}, default=json_default)
    ) == {"ma": "backtrader.indicators.ema:EMA", "n": 3, "a": [0, 1], "cls": "numpy:ndarray"}
    with pytest.raises(TypeError):
        json.dumps({"x": object()}, default=json_default)
