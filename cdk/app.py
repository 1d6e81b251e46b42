"""Builds the CDK app: context from cdk.json (+ the CLI's -c), settings validated, cdk-nag attached."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from cdk.config import DeploySettings
from cdk.nag import add_nag_checks
from cdk.stack import CodeExecStack

REPO_ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = REPO_ROOT / "cdk.json"


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """`python app.py` alone does not read cdk.json (the CLI does); load it as the App's defaults."""
    context: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    return context


def deploy_settings(app: cdk.App) -> DeploySettings:
    def get(key: str) -> Any:
        value = app.node.try_get_context(key)
        if value is None and key in ("account", "region"):
            # The CLI fills these from the caller's credentials; context wins when both are set.
            value = os.environ.get(f"CDK_DEFAULT_{key.upper()}")
        return value

    for key in ("account", "region"):
        if get(key) is None:
            raise ValueError(
                f"no AWS {key}: use AWS credentials (the CDK CLI fills CDK_DEFAULT_ACCOUNT/REGION from them) "
                f"or pass -c {key}=... (make synth uses dummies)"
            )
    return DeploySettings.from_context(get)


def build_app(
    *, context: dict[str, Any] | None = None, outdir: str | None = None, runners_dir: Path | None = None
) -> tuple[cdk.App, CodeExecStack]:
    """The CLI's CDK_CONTEXT_JSON (cdk.json + -c flags) overrides cdk.json; `context` overrides both."""
    app = cdk.App(context=cdk_json_context(), post_cli_context=context, outdir=outdir)
    settings = deploy_settings(app)
    stack = CodeExecStack(
        app, settings.stack_name, settings=settings, runners_dir=runners_dir or REPO_ROOT / "runners"
    )
    add_nag_checks(app)
    return app, stack
