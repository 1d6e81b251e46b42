#!/usr/bin/env python3
"""CDK entry point (`cdk synth|diff|deploy`, or `python app.py` to synthesize offline into cdk.out)."""

import os
import sys

from cdk.app import build_app

if __name__ == "__main__":
    try:
        # The CLI names the output folder in CDK_OUTDIR; run alone, the App would pick a temp dir.
        app, _ = build_app(outdir=None if "CDK_OUTDIR" in os.environ else "cdk.out")
    except ValueError as exc:  # missing account/region or invalid context: a message, not a traceback
        sys.exit(f"error: {exc}")
    app.synth()
