"""The language registry: lookups by name, alias and Judge0 id, and the definitions it refuses."""

from __future__ import annotations

import pytest

from functions.core.languages import LanguageRegistry, LanguageSpec
from tests.unit.factories import REGISTRY


def spec(name: str, judge0_ids: tuple[int, ...]) -> LanguageSpec:
    return REGISTRY.get("python").model_copy(update={"name": name, "aliases": (), "judge0_ids": judge0_ids})


def test_a_judge0_id_finds_its_language() -> None:
    python = REGISTRY.by_judge0_id(92)
    assert python is not None
    assert python.name == "python"
    assert REGISTRY.by_judge0_id(1) is None
    assert [judge0_id for judge0_id, _language in REGISTRY.judge0_ids()] == [54, 71, 92]


def test_a_judge0_id_defined_by_two_languages_is_refused() -> None:
    with pytest.raises(ValueError, match="Judge0 language id 71 is defined twice"):
        LanguageRegistry([spec("one", (71,)), spec("two", (72, 71))])


@pytest.mark.parametrize("judge0_id", [0, -3], ids=["zero", "negative"])
def test_a_judge0_id_is_a_positive_integer(judge0_id: int) -> None:
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        LanguageSpec.model_validate({**spec("one", ()).model_dump(), "judge0_ids": [judge0_id]})
