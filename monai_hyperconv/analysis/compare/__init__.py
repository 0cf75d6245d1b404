"""Comparison runner (plan / launch / run / report): train several network fragments on one bundle with the same seed and budget, then report.

Every model is trained and evaluated by the bundle itself through ``python -m monai.bundle run`` (a subprocess per
run, so a crash or a kill loses one run, never the comparison), with the network swapped by merging a fragment
``configs/networks/<variant>.yaml`` and the budget given as config overrides. Each model works in its own folder::

    <output_dir>/<model>/models/        ckpt_dir of its training (model.pt, checkpoint_last.pt)
    <output_dir>/<model>/eval_<name>/   output_dir of each evaluation (metrics, noise sweep CSV)
    <output_dir>/<model>/*.log          everything the bundle printed
    <output_dir>/<model>/trained.json   written once training finished
    <output_dir>/<model>/result.json    written once every evaluation finished: the model's report row

Markers are written atomically and carry a signature of everything that decides the result (the bundle configs,
the fragment, the overrides, the seed). A rerun skips models whose ``result.json`` matches, evaluates models that
are trained but not evaluated, resumes a model whose training was interrupted (``checkpoint_last.pt`` present)
with the bundle's resume override, and refuses to mix results of different settings in one folder.
"""

from monai_hyperconv.analysis.compare.launch import bundle_command, inprocess_launcher, subprocess_launcher
from monai_hyperconv.analysis.compare.plan import Evaluation, ModelSpec, load_experiment
from monai_hyperconv.analysis.compare.report import read_metric
from monai_hyperconv.analysis.compare.run import ComparisonRunner, make_runner, run_comparison

__all__ = [
    "ComparisonRunner",
    "Evaluation",
    "ModelSpec",
    "bundle_command",
    "inprocess_launcher",
    "load_experiment",
    "make_runner",
    "read_metric",
    "run_comparison",
    "subprocess_launcher",
]
