"""The promise: a new language is one folder under runners/ and nothing else changes.

A copy of the runners tree gets one more folder (a second Python, under another name, alias and Judge0
id) and every consumer of the language registry picks it up with no code change: lookup and validation,
the OpenAPI document's enums and examples, /judge0's languages and submissions, the conformance suite, the
CDK app's images, and a real run in the sandbox.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions import wiring
from functions.api.openapi import ServiceDescription
from functions.api.routes import API_TITLE, API_VERSION, app
from functions.core.languages import IMAGE_PREFIX, load_registry
from functions.core.models import ExecuteRequest
from functions.core.service import ExecutionService
from functions.core.spec import prepare_run
from functions.settings import DEFAULT_RUNNERS_DIR, Settings
from tests.conformance import conformance_cases, wanted
from tests.conftest import FakeBackend, Invoke
from tests.infrastructure.conftest import base_context

NEW_NAME, NEW_ALIAS = "python_next", "pynext"
# Judge0 CE's id of a Python this tree does not have (2.7): a new folder brings the ids it answers.
NEW_JUDGE0_ID = 70


@pytest.fixture(scope="module")
def runners(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The real runners tree plus a folder made by copying python's and renaming it in its language.json."""
    root = tmp_path_factory.mktemp("promise") / "runners"
    shutil.copytree(DEFAULT_RUNNERS_DIR, root)
    shutil.copytree(root / "python", root / NEW_NAME)
    definition = json.loads((root / NEW_NAME / "language.json").read_text())
    definition.update(
        name=NEW_NAME, display_name="Python (next)", aliases=[NEW_ALIAS], judge0_ids=[NEW_JUDGE0_ID]
    )
    (root / NEW_NAME / "language.json").write_text(json.dumps(definition))
    root.chmod(0o755)
    load_registry.cache_clear()
    yield root
    load_registry.cache_clear()


def test_lookup_and_validation_find_it(runners: Path) -> None:
    registry = load_registry(runners)
    request = ExecuteRequest(language=NEW_ALIAS.upper(), code="print(1)", encoding="text")
    prepared = prepare_run(request, registry, wiring.sync_policy(Settings()))
    assert prepared.task.language.name == NEW_NAME
    assert prepared.task.language.image == IMAGE_PREFIX + NEW_NAME


def test_the_api_document_lists_it_and_shows_its_example(runners: Path) -> None:
    description = ServiceDescription(
        registry=load_registry(runners), policy=wiring.sync_policy(Settings()), runners_dir=runners
    )
    document = description.finish(
        json.loads(app.get_openapi_json_schema(title=API_TITLE, version=API_VERSION))
    )
    content: dict[str, Any] = document["paths"]["/execute"]["post"]["requestBody"]["content"][
        "application/json"
    ]
    schema = document["components"]["schemas"]["ExecuteRequest"]["properties"]["language"]
    assert {NEW_NAME, NEW_ALIAS} <= set(schema["enum"])
    assert content["examples"][NEW_NAME]["value"]["language"] == NEW_NAME
    judge0_ids = document["components"]["schemas"]["SubmissionRequest"]["properties"]["language_id"]["enum"]
    assert NEW_JUDGE0_ID in judge0_ids


def test_its_judge0_ids_reach_the_judge0_api(
    runners: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the handler's service on the new tree (a backend that runs nothing)
    settings = Settings(runners_dir=runners)
    backend = FakeBackend()
    service = ExecutionService(
        backend=backend,
        registry=load_registry(runners),
        policy=wiring.sync_policy(settings),
        sync_budget_s=settings.sync_budget_s,
    )
    monkeypatch.setattr(wiring, "get_service", lambda: service)
    # When a Judge0 client lists the languages and submits to the new id
    languages = {entry["id"]: entry["name"] for entry in invoke("GET", "/judge0/languages").json()}
    created = invoke(
        "POST", "/judge0/submissions?wait=true", {"source_code": "print(1)", "language_id": NEW_JUDGE0_ID}
    )
    # Then the id is listed under the folder's name and runs the folder's language
    assert languages[NEW_JUDGE0_ID].startswith("Python (next")
    assert created.status == 201
    assert [task.language.name for task in backend.tasks] == [NEW_NAME]


def test_the_conformance_suite_covers_it(runners: Path) -> None:
    behaviours = {
        case.behaviour.name for case in conformance_cases(runners) if case.language.name == NEW_NAME
    }
    assert behaviours == {behaviour.name for behaviour in wanted(load_registry(runners).get(NEW_NAME))}


def test_the_cdk_app_builds_its_image(runners: Path, tmp_path: Path, placeholder_bundle: Path) -> None:
    from cdk.app import build_app

    cdk_app, stack = build_app(
        context=base_context(placeholder_bundle), outdir=str(tmp_path), runners_dir=runners
    )
    template = cdk_app.synth().get_stack_by_name(stack.stack_name).template
    repositories = [
        resource["Properties"].get("RepositoryName", "")
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::ECR::Repository"
    ]
    assert any(name.endswith(IMAGE_PREFIX + NEW_NAME) for name in repositories), repositories


@pytest.mark.sandbox
def test_it_runs_in_the_sandbox(runners: Path) -> None:
    settings = Settings(runners_dir=runners)
    service = wiring.build_service(settings)
    try:
        hello = (runners / NEW_NAME / load_registry(runners).get(NEW_NAME).test_program).read_text()
        response = service.execute(ExecuteRequest(language=NEW_NAME, code=hello, encoding="text"))
    finally:
        service.backend.close()
    assert (response.verdict, response.stdout, response.language) == ("accepted", "Hello, World!\n", NEW_NAME)
