"""cdk-nag 3 wiring: AwsSolutions checks as a CDK validation plugin, and acknowledgements with reasons.

Any finding left unacknowledged makes `app.synth()` raise (cdk-nag 3 reports warnings as violations too),
so the synthesized templates are nag-clean by construction. Acknowledgements are also written into each
resource's Metadata (`cdk_nag.rules_to_suppress`) so reviewers and tests can read every reason.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

MIN_REASON_CHARS = 40  # a reason is a sentence a reviewer can check, not "n/a"


def add_nag_checks(app: cdk.App) -> None:
    cdk.Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, verbose=True, write_suppressions_to_cloud_formation=True)
    )


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Suppress one AwsSolutions rule (or one `Rule[finding]`) on `scope` and everything below it."""
    if len(reason.strip()) < MIN_REASON_CHARS:
        raise ValueError(f"the acknowledgement of {rule_id} needs a real reason, got {reason!r}")
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))
