"""The README's chart: each language's time through the sandbox and the service, as a ratio to bare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")  # no display: render to a file
import matplotlib.pyplot as plt

COLUMNS = ("sandbox_cold", "sandbox_warm", "http")
LABELS = {
    "sandbox_cold": "sandbox, started on demand",
    "sandbox_warm": "sandbox, warm",
    "http": "whole HTTP path",
}


def draw(results: dict[str, Any], path: Path) -> None:
    languages = sorted(results["languages"])
    figure, axes = plt.subplots(figsize=(8, 4), dpi=120)
    width = 0.8 / len(COLUMNS)
    for offset, column in enumerate(COLUMNS):
        ratios = [results["languages"][name]["ratio_to_bare"][column] for name in languages]
        positions = [index + offset * width for index in range(len(languages))]
        bars = axes.bar(positions, ratios, width, label=LABELS[column])
        axes.bar_label(bars, fmt="%.2f", fontsize=7)
    axes.axhline(1.0, color="black", linewidth=0.8)
    axes.set_xticks([index + width for index in range(len(languages))], languages)
    axes.set_ylabel("time / bare toolchain")
    axes.set_title("Hello world: one fresh sandbox per run, compared with the bare toolchain")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
