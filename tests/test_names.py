from __future__ import annotations

import pytest

from modelyard.errors import ValidationError
from modelyard.names import check_metric_name, check_name, check_tags, clean_relpath


@pytest.mark.parametrize("name", ["a", "tf-mnist", "A.b_c-9", "x" * 255])
def test_valid_names(name: str) -> None:
    assert check_name("name", name) == name


@pytest.mark.parametrize("name", ["", "-a", ".a", "a b", "a/b", "x" * 256, "é", None, 3])
def test_invalid_names_name_the_field(name: object) -> None:
    with pytest.raises(ValidationError) as info:
        check_name("model_name", name)
    assert info.value.field == "model_name"
    assert "model_name" in str(info.value)


@pytest.mark.parametrize("name", ["loss", "train/loss", "acc (val)", "_x", "a:b[0]"])
def test_metric_names(name: str) -> None:
    assert check_metric_name("name", name) == name


@pytest.mark.parametrize("name", ["", " lead", "/abs", "a\nb", "x" * 256])
def test_bad_metric_names(name: str) -> None:
    with pytest.raises(ValidationError):
        check_metric_name("name", name)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("a", "a"), ("./a//b/", "a/b"), ("a/./b", "a/b"), ("outputs/model", "outputs/model")],
)
def test_relpaths_are_normalised(given: str, expected: str) -> None:
    assert clean_relpath("target_path", given) == expected


@pytest.mark.parametrize(
    "bad", ["", ".", "..", "a/../b", "../x", "/etc/passwd", "C:/x", "a\\b", "a\x00b", "x" * 2000]
)
def test_relpaths_that_leave_their_root_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        clean_relpath("target_path", bad)
    assert info.value.field == "target_path"


def test_root_is_allowed_only_when_asked() -> None:
    assert clean_relpath("prefix", "", allow_root=True) == ""
    assert clean_relpath("prefix", "./", allow_root=True) == ""


def test_tags() -> None:
    assert check_tags("tags", {"a": 1, "b": None, "c": "x"}) == {"a": "1", "b": "", "c": "x"}
    # v1 allows spaces and punctuation in keys ("Best Run"); control characters, empty keys,
    # edge spaces and unbounded lengths are refused, naming the key.
    assert check_tags("tags", {"Best Run": "yes", "lr (init)": 0.1}) == {
        "Best Run": "yes",
        "lr (init)": "0.1",
    }
    for bad in ("", "tab\there", "bell\x07", "rtl\u202eoverride", " edge", "k" * 256):
        with pytest.raises(ValidationError, match="key"):
            check_tags("tags", {bad: "x"})
    with pytest.raises(ValidationError):
        check_tags("tags", {1: "x"})
    with pytest.raises(ValidationError):
        check_tags("tags", {"k": "x" * 5001})
    with pytest.raises(ValidationError):
        check_tags("tags", ["not", "a", "dict"])
