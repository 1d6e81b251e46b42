"""The language registry: lookups by name, alias and Judge0 id, and the definitions it refuses."""

from __future__ import annotations

import pytest

from functions.core.languages import LanguageRegistry, LanguageSpec, load_registry
from functions.settings import DEFAULT_RUNNERS_DIR
from tests.unit.factories import REGISTRY

# The ids Judge0 CE 1.13.1 gives the languages of runners/ (its clients' default language-id map).
JUDGE0_1_13_1_IDS = {
    50: "c",
    52: "cpp",
    54: "cpp",
    60: "go",
    62: "java",
    63: "javascript",
    71: "python",
    73: "rust",
}


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


@pytest.mark.parametrize(("judge0_id", "name"), JUDGE0_1_13_1_IDS.items(), ids=str)
def test_the_runners_answer_judge0_1_13_1_ids(judge0_id: int, name: str) -> None:
    language = load_registry(DEFAULT_RUNNERS_DIR).by_judge0_id(judge0_id)
    assert language is not None
    assert language.name == name
