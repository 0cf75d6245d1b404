"""``python -m monai_hyperconv.analysis COMMAND --flag value ...`` (flags parsed like ``python -m monai.bundle``).

Commands:
    kernels  per-layer smoothness CSV and kernel grid PNG of a trained bundle network
    recap    recapitulation of learned regular kernels by hyper-networks (N_L = 8, 24): CSV and PNG
    compare  train several network fragments on one bundle and write a Table-1-style report
    monitor  per-layer kernel movement per step from a training run's training_monitor.csv (monitor_training true)
    speed    epochs each model needs to reach a reference model's training loss at a given epoch (same seeds)
    fingerprint  digests of a run's data, initial weights, first batches and first epoch, to compare machines

Examples:
    python -m monai_hyperconv.analysis kernels \\
        --config_file "['bundles/liver_lesion_seg/configs/train.yaml','configs/networks/hyper_unet_5x5.yaml']" \\
        --checkpoint bundles/liver_lesion_seg/models/model.pt --output_dir outputs/kernels
    python -m monai_hyperconv.analysis recap \\
        --config_file "['bundles/liver_lesion_seg/configs/train.yaml','configs/networks/unet_5x5.yaml']" \\
        --checkpoint <unet_5x5 model.pt> --output_dir outputs/recap
    python -m monai_hyperconv.analysis compare --experiment configs/experiments/liver_table1.yaml \\
        --output_dir bundles/liver_lesion_seg/outputs/table1
"""

from __future__ import annotations

import inspect
import sys

from monai_hyperconv.analysis.commands import analyze_kernels, analyze_recapitulation
from monai_hyperconv.analysis.compare import run_comparison
from monai_hyperconv.analysis.compare.curves import learning_speed_command
from monai_hyperconv.analysis.fingerprint import fingerprint_command
from monai_hyperconv.analysis.training_monitor import monitor_command
from monai_hyperconv.utils.errors import install_excepthook
from monai_hyperconv.utils.optional import require


def run_analysis_cli(argv: list[str] | None = None) -> None:
    """Run a command; ``argv`` defaults to ``sys.argv[1:]``."""
    commands = {
        "kernels": analyze_kernels,
        "recap": analyze_recapitulation,
        "compare": run_comparison,
        "speed": learning_speed_command,
        "monitor": monitor_command,
        "fingerprint": fingerprint_command,
    }
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) > 1 and argv[0] in commands and {"--help", "-h"} & set(argv[1:]):
        # fire would pass --help on as a config override of a command taking **overrides (compare)
        print(f"python -m monai_hyperconv.analysis {argv[0]} --flag value ...\n\n{inspect.getdoc(commands[argv[0]])}")
        return
    fire = require("fire", purpose="the analysis command line")
    fire.Fire(commands, command=argv)


if __name__ == "__main__":
    install_excepthook()  # a failing command ends with its root cause (a bundle run of it installs it too)
    run_analysis_cli()
