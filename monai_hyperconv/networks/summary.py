"""Parameters and receptive fields of the paper's networks, built from ``configs/networks/*.yaml``, against the
paper's figures. ``python -m monai_hyperconv.networks.summary [config_dir]`` prints the Markdown table."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from torch import nn

from monai_hyperconv.networks.fragments import DEFAULT_CONFIG_DIR, network_from_fragment
from monai_hyperconv.networks.receptive_field import receptive_field

__all__ = [
    "DEFAULT_CONFIG_DIR",
    "PAPER_FIGURES",
    "count_parameters",
    "network_from_fragment",
    "print_network_summary",
    "summary_rows",
    "summary_table",
]


# (fragment, overrides, input channels) -> the paper's parameters in millions and receptive field (Tables 1, 2, 4).
# The multi-branch networks (Table 3) have no published counts; they are listed with the MS task's 4 contrasts.
_NL = "network_def#hidden_channels"
_K = "network_def#kernel_size"
PAPER_FIGURES: list[tuple[str, dict, int, float | None, str | None]] = [
    ("unet_3x3", {}, 1, 2.1, "68 px"),
    ("unet_5x5", {}, 1, 5.3, "128 px"),
    ("dilated_unet_3x3", {}, 1, 2.1, "128 px"),
    ("nonlocal_unet_3x3", {}, 1, 2.3, "all"),
    ("hyper_unet_5x5", {}, 1, 1.2, "128 px"),
    ("nonlocal_hyper_unet_5x5", {}, 1, 1.4, "all"),
    ("flat_dilated_cnn", {}, 1, 0.45, "89 px"),
    ("flat_hyper_cnn", {}, 1, 0.45, "89 px"),
    ("hyperseg", {}, 1, 1.2, "all"),
    *[
        ("hyper_unet_5x5", {_K: k, _NL: [16, 16, n]}, 1, {2: 0.73, 4: 1.2, 8: 2.2}[n], f"{8 + 30 * (k - 1)} px")
        for k in (3, 5, 7)
        for n in (2, 4, 8)
    ],
    *[
        (name, {}, 4, None, None)
        for name in (
            "mb_unet_3x3",
            "mb_unet_5x5",
            "dilated_mb_unet_3x3",
            "nonlocal_mb_unet_3x3",
            "hyper_mb_unet_5x5",
            "nonlocal_hyper_mb_unet_5x5",
        )
    ],
]


def count_parameters(network: nn.Module) -> int:
    """Number of parameters (batch-norm running statistics are buffers and not counted)."""
    return sum(p.numel() for p in network.parameters())


def _describe(name: str, overrides: Mapping[str, object]) -> str:
    if not overrides:
        return name
    k, hidden = overrides.get(_K), overrides.get(_NL)
    return f"{name} (k={k}, N_L={hidden[-1]})" if k is not None and hidden is not None else f"{name} {dict(overrides)}"


def summary_rows(config_dir: str | Path | None = None, figures: Sequence[tuple] | None = None) -> list[dict]:
    """One row per entry of ``figures`` (default :data:`PAPER_FIGURES`): model, inputs, parameters (ours, paper,
    difference) and receptive field (ours, paper), every network built from its fragment in 2-D as configured
    there (32 channels)."""
    config_dir = Path(config_dir) if config_dir is not None else DEFAULT_CONFIG_DIR
    rows = []
    for name, overrides, in_channels, paper_m, paper_rf in PAPER_FIGURES if figures is None else figures:
        net = network_from_fragment(config_dir / f"{name}.yaml", 2, in_channels, 1, overrides)
        params = count_parameters(net)
        rf = receptive_field(net)
        rows.append(
            {
                "model": _describe(name, overrides),
                "in_channels": in_channels,
                "parameters": params,
                "paper_parameters_m": paper_m,
                "difference": None if paper_m is None else params / (paper_m * 1e6) - 1.0,
                "receptive_field": "all" if rf is None else f"{rf} px",
                "paper_receptive_field": paper_rf,
            }
        )
    return rows


def summary_table(rows: Sequence[Mapping]) -> str:
    """Markdown table of :func:`summary_rows`."""
    lines = [
        "| model | in | parameters | paper | difference | receptive field | paper |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        paper = "–" if r["paper_parameters_m"] is None else f"{r['paper_parameters_m']}M"
        diff = "–" if r["difference"] is None else f"{100 * r['difference']:+.1f}%"
        lines.append(
            f"| {r['model']} | {r['in_channels']} | {r['parameters'] / 1e6:.3f}M | {paper} | {diff} | "
            f"{r['receptive_field']} | {r['paper_receptive_field'] or '–'} |"
        )
    return "\n".join(lines)


def print_network_summary(argv: Sequence[str] | None = None) -> None:
    """Print the parameter / receptive-field table of the fragments in ``argv[0]`` (default: configs/networks)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    print(summary_table(summary_rows(argv[0] if argv else None)))


if __name__ == "__main__":
    print_network_summary()
