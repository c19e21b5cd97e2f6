from __future__ import annotations

import math

from modelyard.store.metric_codec import decode, encode


def test_floats_ints_and_json_round_trip() -> None:
    for values in (
        [0.5, -1.25, 1e300],
        [1, 2, -(2**63)],
        [True, False],
        ["a", "é"],
        [1, 2.5, "x", True],
        [[1, 2], {"a": [1]}],
        [2**70],
    ):
        steps = list(range(len(values)))
        times = [1.5 * i for i in steps]
        got = decode(encode(values, steps, times))
        assert got == (values, steps, times)
        assert [type(v) for v in got[0]] == [type(v) for v in values]


def test_nan_and_inf_survive() -> None:
    values, _, _ = decode(encode([math.nan, math.inf], [0, 1], [0.0, 0.0]))
    assert math.isnan(values[0]) and values[1] == math.inf


def test_a_million_points_pack_small() -> None:
    n = 1_000_000
    payload = encode([float(i) for i in range(n)], list(range(n)), [0.0] * n)
    assert len(payload) == 5 + 24 * n
    values, steps, _ = decode(payload)
    assert values[-1] == n - 1 and steps[-1] == n - 1
