"""Comparison runner: trains through the bundle API, resumes a partly finished comparison, writes the report.

A stand-in bundle (train.yaml / evaluate.yaml whose ``run`` writes checkpoints, metrics and a sweep CSV in a few
expressions) keeps this fast; the runner's own logic (markers, resume of an interrupted training, skipping
finished models, refusing mixed settings, the report) runs for real through ``monai.bundle.run``.
"""

import json
import os
import textwrap
from pathlib import Path

import matplotlib.image
import pytest
import torch

from monai_hyperconv.analysis.compare import (
    ComparisonRunner,
    Evaluation,
    bundle_command,
    inprocess_launcher,
    load_experiment,
    make_runner,
    read_metric,
    run_comparison,
)
from monai_hyperconv.analysis.reports import read_csv
from monai_hyperconv.handlers import read_sweep_csv

# the stand-in bundle below is ours: MONAI's warning about evaluating configs adds nothing here
pytestmark = [
    pytest.mark.filterwarnings("ignore:parsing config_file:UserWarning"),
    pytest.mark.usefixtures("one_thread"),
]


TRAIN = """
imports: ["$import os", "$import torch"]
bundle_root: "."
ckpt_dir: "$@bundle_root + '/models'"
output_dir: "$@bundle_root + '/outputs'"
seed: 1
max_epochs: 1
resume: false
spatial_dims: 2
in_channels: 1
network_def: "$torch.nn.Conv2d(1, 1, 3)"
run:
  - "$os.makedirs(@ckpt_dir, exist_ok=True)"
  - "$torch.manual_seed(@seed)"
  - "$torch.save({'network': @network_def.state_dict()}, @ckpt_dir + '/checkpoint_last.pt')"
  - "$torch.save(@network_def.state_dict(), @ckpt_dir + '/model.pt')"
  - "$open(@ckpt_dir + '/runs.txt', 'a').write('resume=%s seed=%s epochs=%s' % (@resume, @seed, @max_epochs) + chr(10))"
"""

# merged on top of train.yaml, as the liver bundle's evaluate.yaml
EVALUATE = """
imports: ["$import os", "$import json", "$import torch", "$from monai_hyperconv.handlers import write_sweep_csv"]
split: test
model_name: model
run:
  - "$os.makedirs(@output_dir, exist_ok=True)"
  - "$@network_def.load_state_dict(torch.load(@ckpt_dir + '/model.pt'))"
  - "$open(@output_dir + '/metrics_' + @model_name + '.json', 'w').write(json.dumps({'mean_dice': @network_def.kernel_size[0] / 10 + (0.5 if @split == 'train' else 0), 'loss': 0.25}))"
  - "$write_sweep_csv([('gaussian', 0.0, 0.9), ('gaussian', 0.2, @network_def.kernel_size[0] / 10)], @output_dir + '/noise_sweep_' + @model_name + '.csv', @model_name, 'dice')"
  - "$write_sweep_csv([('gaussian', 0.0, 0.2), ('gaussian', 0.2, 0.1)], @output_dir + '/noise_sweep_reference.csv', 'reference', 'dice')"
"""


@pytest.fixture
def bundle(tmp_path):
    root = tmp_path / "bundle"
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "train.yaml").write_text(TRAIN)
    (root / "configs" / "evaluate.yaml").write_text(EVALUATE)
    fragments = []
    for name, k in (("net_3x3", 3), ("net_5x5", 5)):
        path = tmp_path / "networks" / f"{name}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f'network_def: "$torch.nn.Conv2d(1, 1, {k})"\n')
        fragments.append(str(path))
    return str(root), fragments


EVALUATIONS = [
    Evaluation("train", "mean_dice", "metrics_{model}.json", {"split": "train"}),
    Evaluation(
        "test", "mean_dice", "metrics_{model}.json", {"split": "test"}, "noise_sweep_*.csv", extra_metric_keys=["loss"]
    ),
]


class CountingLauncher:
    """The real in-process bundle launcher, recording calls; optionally 'killed' after one training run."""

    def __init__(self, kill_after_training_of=None):
        self.calls = []
        self.kill_after_training_of = kill_after_training_of

    def __call__(self, config_files, overrides, log_path):
        self.calls.append((os.path.basename(config_files[-2]), os.path.basename(config_files[-1]), dict(overrides)))
        inprocess_launcher(config_files, overrides, log_path)
        killed = self.kill_after_training_of and config_files[-1].endswith(self.kill_after_training_of)
        if killed and config_files[-2].endswith("train.yaml"):
            raise KeyboardInterrupt("killed while training")  # checkpoint_last.pt exists, no marker


def _runner(bundle, tmp_path, launcher, **kwargs):
    root, fragments = bundle
    evaluate_config = ["configs/train.yaml", "configs/evaluate.yaml"]  # evaluate.yaml extends train.yaml
    kwargs = {"overrides": {"max_epochs": 2}, "seed": 5, "evaluate_config": evaluate_config, **kwargs}
    kwargs.setdefault("evaluations", EVALUATIONS)
    return ComparisonRunner(
        root, fragments, str(tmp_path / "cmp"), resume_override={"resume": True}, launcher=launcher,
        receptive_field_size=32, **kwargs,
    )  # fmt: skip


def test_runner_resumes_without_retraining_finished_models(bundle, tmp_path):
    # first attempt: net_3x3 finishes, net_5x5 is killed during training
    first = CountingLauncher(kill_after_training_of="net_5x5.yaml")
    with pytest.raises(KeyboardInterrupt):
        _runner(bundle, tmp_path, first).run()
    assert [(c[0], c[1]) for c in first.calls] == [
        ("train.yaml", "net_3x3.yaml"),
        ("evaluate.yaml", "net_3x3.yaml"),
        ("evaluate.yaml", "net_3x3.yaml"),
        ("train.yaml", "net_5x5.yaml"),
    ]
    assert all(c[2]["seed"] == 5 and c[2]["max_epochs"] == 2 for c in first.calls)
    cmp_dir = tmp_path / "cmp"
    assert (cmp_dir / "net_3x3" / "result.json").is_file()
    assert not (cmp_dir / "net_5x5" / "trained.json").exists()

    # second attempt: nothing of net_3x3 reruns; net_5x5 resumes from its last checkpoint, then is evaluated
    second = CountingLauncher()
    paths = _runner(bundle, tmp_path, second).run()
    assert [(c[0], c[1]) for c in second.calls] == [
        ("train.yaml", "net_5x5.yaml"),
        ("evaluate.yaml", "net_5x5.yaml"),
        ("evaluate.yaml", "net_5x5.yaml"),
    ]
    assert second.calls[0][2]["resume"] is True
    runs = (cmp_dir / "net_5x5" / "models" / "runs.txt").read_text().splitlines()
    assert runs == ["resume=False seed=5 epochs=2", "resume=True seed=5 epochs=2"]
    assert (cmp_dir / "net_3x3" / "models" / "runs.txt").read_text().splitlines() == ["resume=False seed=5 epochs=2"]

    # the report: one row per model with the metrics the evaluations wrote, params, receptive field
    rows = {r["model"]: r for r in read_csv(paths["csv"])}
    assert set(rows) == {"net_3x3", "net_5x5"}
    assert float(rows["net_5x5"]["test_dice"]) == pytest.approx(0.5)
    assert float(rows["net_5x5"]["train_dice"]) == pytest.approx(1.0)
    assert int(rows["net_3x3"]["parameters"]) == 10 and int(rows["net_5x5"]["parameters"]) == 26
    assert rows["net_3x3"]["receptive_field"] == "3 px" and rows["net_5x5"]["receptive_field"] == "5 px"
    markdown = Path(paths["md"]).read_text()
    assert "| net_5x5 | 0.000M | 5 px | 1 | 0.5 | 0.25 |" in markdown
    assert float(rows["net_3x3"]["test_loss"]) == 0.25
    assert os.path.isfile(cmp_dir / "net_5x5" / "eval_test" / "noise_sweep_net_5x5.csv")  # model_name was passed
    assert matplotlib.image.imread(paths["png"]).shape[1] > 300
    # the sweep CSVs next to the report are labelled with the runner's model names
    assert read_csv(str(cmp_dir / "robustness_net_5x5.csv"))[0]["model"] == "net_5x5"
    # a reference curve every model writes (CS-MRI's zero-filled input) stays one curve with its own label
    assert read_csv(str(cmp_dir / "robustness_reference.csv"))[0]["model"] == "reference"
    assert sorted(p.name for p in cmp_dir.glob("robustness_*.csv")) == [
        "robustness_net_3x3.csv", "robustness_net_5x5.csv", "robustness_reference.csv"
    ]  # fmt: skip

    # a third run with everything done launches nothing and rewrites the same report
    third = CountingLauncher()
    before = Path(paths["csv"]).read_text()
    _runner(bundle, tmp_path, third).run()
    assert third.calls == [] and Path(paths["csv"]).read_text() == before

    # other evaluation settings: every model is re-evaluated, none retrained
    fourth = CountingLauncher()
    other_test = Evaluation("test", "mean_dice", "metrics_{model}.json", extra_metric_keys={"l": "loss"})
    evaluations = [*EVALUATIONS[:1], other_test]
    paths = _runner(bundle, tmp_path, fourth, evaluations=evaluations).run()
    assert [c[0] for c in fourth.calls] == ["evaluate.yaml"] * 4
    assert float(read_csv(paths["csv"])[0]["test_l"]) == 0.25


def test_runner_refuses_to_mix_settings_and_checks_inputs(bundle, tmp_path):
    root, fragments = bundle
    launcher = CountingLauncher()
    _runner((root, fragments[:1]), tmp_path, launcher).run()
    with pytest.raises(RuntimeError, match="other settings"):
        _runner((root, fragments[:1]), tmp_path, CountingLauncher(), overrides={"max_epochs": 3}).run()
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        _runner((root, [str(tmp_path / "missing.yaml")]), tmp_path, launcher)
    with pytest.raises(ValueError, match="distinct"):
        _runner((root, [fragments[0], fragments[0]]), tmp_path, launcher)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        _runner((str(tmp_path / "nowhere"), fragments), tmp_path, launcher)


def test_read_metric_formats_and_errors(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"val": {"dice": 0.25}}))
    assert read_metric(str(tmp_path / "m.json"), "val#dice") == 0.25
    (tmp_path / "metrics.csv").write_text("mean_dice\t0.75\nloss\t0.1\n")  # MONAI MetricsSaver format
    assert read_metric(str(tmp_path / "metrics.csv"), "mean_dice") == 0.75
    with pytest.raises(KeyError, match="metrics.csv.*psnr"):
        read_metric(str(tmp_path / "metrics.csv"), "psnr")
    (tmp_path / "per_image.csv").write_text("model,image,psnr\nm,a.nii,30.0\nm,b.nii,32.0\n")  # a table: mean
    assert read_metric(str(tmp_path / "per_image.csv"), "psnr") == 31.0
    with pytest.raises(FileNotFoundError, match="none.csv"):
        read_metric(str(tmp_path / "none.csv"), "dice")


def test_bundle_command_round_trips_through_the_monai_bundle_cli(bundle, tmp_path):
    import fire
    from monai.bundle.scripts import run

    root, fragments = bundle
    overrides = {
        "bundle_root": root, "ckpt_dir": str(tmp_path / "ck"), "max_epochs": 3, "seed": 2, "resume": True,
        "output_dir": "$@ckpt_dir + '/out'",  # an expression, kept as a string
    }  # fmt: skip
    cmd = bundle_command([os.path.join(root, "configs", "train.yaml"), fragments[1]], overrides, python="python")
    assert cmd[:4] == ["python", "-m", "monai.bundle", "run"]
    # parsed as `python -m monai.bundle` parses it (fire over monai.bundle.scripts' functions), in this process
    fire.Fire({"run": run}, command=cmd[3:])
    assert (tmp_path / "ck" / "runs.txt").read_text() == "resume=True seed=2 epochs=3\n"
    assert torch.load(tmp_path / "ck" / "model.pt")["weight"].shape == (1, 1, 5, 5)


def test_experiment_file_and_run_comparison(bundle, tmp_path):
    root, fragments = bundle
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(
        textwrap.dedent(
            f"""
            bundle_root: {root}
            networks:
              - {fragments[0]}
              - {{fragment: {fragments[0]}, name: net_3x3_long, overrides: {{max_epochs: 7}}}}
            seed: 3
            overrides: {{max_epochs: 4}}
            resume_override: {{resume: true}}
            evaluate_config: [configs/train.yaml, configs/evaluate.yaml]
            evaluations:
              - {{name: test, metric_key: mean_dice, metrics_file: "metrics_{{model}}.json"}}
            """
        )
    )
    assert load_experiment(str(experiment))["seed"] == 3
    paths = run_comparison(str(experiment), output_dir=str(tmp_path / "out"), inprocess=True, max_epochs=1)
    rows = read_csv(paths["csv"])
    assert [r["model"] for r in rows] == ["net_3x3", "net_3x3_long"]
    assert float(rows[0]["test_dice"]) == pytest.approx(0.3)
    # the command line's override applies to every model, a model's own override on top of it
    assert (tmp_path / "out" / "net_3x3" / "models" / "runs.txt").read_text() == "resume=False seed=3 epochs=1\n"
    assert (tmp_path / "out" / "net_3x3_long" / "models" / "runs.txt").read_text() == "resume=False seed=3 epochs=7\n"
    assert "`net_3x3_long`: " in Path(paths["md"]).read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text("bundle_root: x\nnetwork: []\n")
    with pytest.raises(ValueError, match="bad.yaml.*unknown keys \\['network'\\].*missing keys"):
        load_experiment(str(bad))


def test_receptive_field_uses_the_network_method_else_measures_it():
    from torch import nn

    from monai_hyperconv.analysis.receptive_field import gradient_receptive_field, network_receptive_field

    chain = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 2, 3, padding=2, dilation=2))
    chain.append(nn.InstanceNorm2d(2))  # image-wide statistics are not counted
    assert gradient_receptive_field(chain, 2, 1, size=32) == 1 + 2 + 4
    assert network_receptive_field(chain, 2, 1, size=32)[0] == "7 px"

    class Global(nn.Module):
        def forward(self, x):
            return x + x.mean(dim=(2, 3), keepdim=True)

    assert network_receptive_field(Global(), 2, 1, size=16)[0] == "all"

    class WithMethod(nn.Sequential):
        def receptive_field(self):
            return 68

    text, source = network_receptive_field(WithMethod(nn.Conv2d(1, 1, 3)), 2, 1)
    assert text == "68 px" and "receptive_field" in source and "gradient" not in source


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS = sorted(f for f in os.listdir(os.path.join(REPO, "configs", "experiments")) if f.endswith(".yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_repository_experiment_files_are_valid(name, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # experiment files name paths from the repository root
    runner = make_runner(os.path.join("configs", "experiments", name), output_dir=str(tmp_path))
    assert runner.models and all(os.path.isfile(m.fragment) for m in runner.models)
    assert {"test"} <= {ev.name for ev in runner.evaluations}
    assert runner.bundle_has_seed, "the seed must reach every model"
    if len(runner.models) <= 3:  # the small experiments: their networks build under the budget's overrides
        for model in runner.models:
            described = runner.describe_network(model)
            assert described["parameters"] > 0 and described["receptive_field"].endswith(("px", "all"))


def test_metrics_and_sweep_paths_take_the_run_overrides(bundle, tmp_path):
    """A bundle that reports into <output_dir>/fold<k>/ (as the MS bundle): ``fold{fold}/...`` follows --fold."""
    root, fragments = bundle
    per_fold = EVALUATE.replace("@output_dir", "@report_dir").replace(
        "model_name: model\n", "model_name: model\nfold: 0\nreport_dir: \"$@output_dir + '/fold' + str(@fold)\"\n"
    )
    with open(os.path.join(root, "configs", "evaluate.yaml"), "w") as f:
        f.write(per_fold)
    evaluations = [
        Evaluation(
            "test", "mean_dice", "fold{fold}/metrics_{model}.json", {"split": "test"}, "fold{fold}/noise_sweep_*.csv"
        )
    ]
    runner = _runner(
        (root, fragments[:1]),
        tmp_path,
        CountingLauncher(),
        evaluations=evaluations,
        overrides={"max_epochs": 1, "fold": 2},
    )
    runner.run()
    model_dir = runner.model_dir(runner.models[0])
    assert os.path.isfile(os.path.join(model_dir, "eval_test", "fold2", "metrics_net_3x3.json"))
    row = read_csv(os.path.join(str(tmp_path / "cmp"), "comparison.csv"))[0]
    assert float(row["test_dice"]) == pytest.approx(0.3)
    assert json.loads(Path(os.path.join(model_dir, "result.json")).read_text())[
        "sweep_csvs"
    ]  # found in fold2/, else it raises


# -- several seeds ---------------------------------------------------------------------------------------------------
# a stand-in whose metrics depend on the seed in a known way: mean_dice = k/10 + seed/100 (+ 0.005 * seed^2 for the
# 5x5 model), and the sweep's noisy point = the same value, so the statistics can be computed by hand below
SEEDED_EVALUATE = EVALUATE.replace(
    "'mean_dice': @network_def.kernel_size[0] / 10 + (0.5 if @split == 'train' else 0)",
    "'mean_dice': @network_def.kernel_size[0] / 10 + @seed / 100 + (0.005 * @seed ** 2 if @network_def.kernel_size[0] == 5 else 0)",
).replace(
    "('gaussian', 0.2, @network_def.kernel_size[0] / 10)",
    "('gaussian', 0.2, @network_def.kernel_size[0] / 10 + @seed / 100 + (0.005 * @seed ** 2 if @network_def.kernel_size[0] == 5 else 0))",
)


def _seeded_values(k, seed):
    return k / 10 + seed / 100 + (0.005 * seed**2 if k == 5 else 0)


def test_several_seeds_give_mean_sd_and_paired_intervals(bundle, tmp_path):
    root = bundle[0]
    (Path(root) / "configs" / "evaluate.yaml").write_text(SEEDED_EVALUATE)
    evaluations = [Evaluation("test", "mean_dice", "metrics_{model}.json", {"split": "test"}, "noise_sweep_*.csv")]
    launcher = CountingLauncher()
    runner = _runner(bundle, tmp_path, launcher, evaluations=evaluations, seeds=[0, 1, 3], baseline="net_3x3",
                     seed_id=["seed", "split_seed"])  # fmt: skip
    paths = runner.run()
    # every (model, seed) is a run of its own, trained and evaluated with that seed
    assert [(c[1], c[2]["seed"]) for c in launcher.calls if c[0] == "train.yaml"] == [
        ("net_3x3.yaml", 0), ("net_5x5.yaml", 0), ("net_3x3.yaml", 1), ("net_5x5.yaml", 1),
        ("net_3x3.yaml", 3), ("net_5x5.yaml", 3),
    ]  # fmt: skip
    assert all("split_seed" not in c[2] for c in launcher.calls), "split_seed is not an id of the stand-in bundle"
    cmp_dir = tmp_path / "cmp"
    for seed in (0, 1, 3):
        runs = (cmp_dir / "net_5x5" / f"seed{seed}" / "models" / "runs.txt").read_text().splitlines()
        assert runs == [f"resume=False seed={seed} epochs=2"]

    # mean and sample sd per model, by hand
    seeds = (0, 1, 3)
    rows = {r["model"]: r for r in read_csv(paths["csv"])}
    for name, k in (("net_3x3", 3), ("net_5x5", 5)):
        values = [_seeded_values(k, s) for s in seeds]
        mean = sum(values) / 3
        sd = (sum((v - mean) ** 2 for v in values) / 2) ** 0.5
        assert float(rows[name]["test_dice"]) == pytest.approx(mean)
        assert float(rows[name]["test_dice_sd"]) == pytest.approx(sd)
        assert rows[name]["n_seeds"] == "3"
    assert len(read_csv(paths["runs_csv"])) == 6

    # paired difference 5x5 - 3x3 per seed: 0.2 + 0.005 s^2 = 0.2, 0.205, 0.245; t(0.975, 2) = 4.3027
    diffs = [0.2, 0.205, 0.245]
    mean = sum(diffs) / 3
    sd = (sum((d - mean) ** 2 for d in diffs) / 2) ** 0.5
    half = 4.302653 * sd / 3**0.5
    paired = {r["metric"]: r for r in read_csv(paths["paired_csv"]) if r["model"] == "net_5x5"}
    assert set(paired) == {"test_dice", "robustness_gaussian_0", "robustness_gaussian_0.2"}
    for metric in ("test_dice", "robustness_gaussian_0.2"):  # the noisy sweep point has the same values
        assert float(paired[metric]["mean_difference"]) == pytest.approx(mean)
        assert float(paired[metric]["ci95_low"]) == pytest.approx(mean - half, abs=1e-5)
        assert float(paired[metric]["ci95_high"]) == pytest.approx(mean + half, abs=1e-5)
    assert float(paired["robustness_gaussian_0"]["mean_difference"]) == pytest.approx(0.0)  # 0.9 for both

    # the mean sweep per label (the reference curve once), the figure and the report
    _, curve = read_sweep_csv(str(cmp_dir / "robustness_net_5x5.csv"))
    assert [p["value"] for p in curve] == pytest.approx([0.9, sum(_seeded_values(5, s) for s in seeds) / 3], abs=1e-6)
    assert (cmp_dir / "robustness_reference.csv").is_file() and matplotlib.image.imread(paths["png"]).ndim == 3
    md = Path(paths["md"]).read_text()
    assert f"{mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}]" in md
    assert "net_5x5 − net_3x3" in md

    # a rerun skips every finished run; a baseline that is no model is refused
    again = CountingLauncher()
    _runner(bundle, tmp_path, again, evaluations=evaluations, seeds=[0, 1, 3], baseline="net_3x3",
            seed_id=["seed", "split_seed"]).run()  # fmt: skip
    assert again.calls == []
    with pytest.raises(ValueError, match="baseline 'unet'"):
        _runner(bundle, tmp_path, again, evaluations=evaluations, seeds=[0, 1], baseline="unet")


def test_paired_statistics_by_hand():
    from monai_hyperconv.analysis.compare.stats import mean_sd, paired_difference, t_quantile

    assert t_quantile(2) == pytest.approx(4.302653, abs=1e-5) and t_quantile(1) == pytest.approx(12.7062, abs=1e-4)
    assert mean_sd([1.0]) == (1.0, None)
    assert mean_sd([1.0, 2.0, 4.0]) == pytest.approx((7 / 3, (7 / 3) ** 0.5))
    # only shared seeds are paired: diffs (seed 0: 1.0, seed 2: 3.0); mean 2, sd sqrt(2), half = 12.706 * sqrt(2)/sqrt(2)
    diff = paired_difference({0: 2.0, 1: 5.0, 2: 4.0}, {0: 1.0, 2: 1.0, 7: 0.0})
    assert diff.seeds == [0, 2] and diff.n == 2 and diff.mean == pytest.approx(2.0)
    assert (diff.low, diff.high) == pytest.approx((2.0 - 12.7062, 2.0 + 12.7062), abs=1e-3)
    assert paired_difference({0: 1.0}, {1: 1.0}) is None
    one = paired_difference({0: 1.5}, {0: 1.0})
    assert one.n == 1 and one.low is None and one.mean == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least 2"):
        t_quantile(0)


def test_t_quantile_table_without_scipy(monkeypatch):
    import sys

    from monai_hyperconv.analysis.compare import stats

    monkeypatch.setitem(sys.modules, "scipy.stats", None)  # import fails as if scipy were not installed
    assert stats.t_quantile(2) == pytest.approx(4.303) and stats.t_quantile(100) == pytest.approx(2.042)
    with pytest.raises(ValueError, match="only the 95"):
        stats.t_quantile(2, level=0.9)


def test_experiment_seeds_and_command_line_seed(bundle, tmp_path):
    root, fragments = bundle
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(
        textwrap.dedent(f"""
        bundle_root: {root}
        evaluate_config: [configs/train.yaml, configs/evaluate.yaml]
        networks: [{fragments[0]}, {fragments[1]}]
        seeds: [4, 5]
        baseline: net_5x5
        evaluations: [{{name: test, metric_key: mean_dice, metrics_file: "metrics_{{model}}.json"}}]
    """)
    )
    runner = make_runner(str(experiment), output_dir=str(tmp_path / "o"))
    assert runner.seeds == [4, 5] and runner.multi_seed and runner.baseline == "net_5x5"
    assert runner.model_dir(runner.models[0], 5).endswith(os.path.join("net_3x3", "seed5"))
    single = make_runner(str(experiment), output_dir=str(tmp_path / "o"), seed=9)  # replaces the list
    assert single.seeds == [9] and not single.multi_seed
    experiment.write_text(experiment.read_text() + "seed: 1\n")
    with pytest.raises(ValueError, match="not both"):
        make_runner(str(experiment), output_dir=str(tmp_path / "o"))
    experiment.write_text(experiment.read_text().replace("seeds: [4, 5]", "seeds: [4, x]").replace("seed: 1\n", ""))
    with pytest.raises(ValueError, match="list of integers"):
        make_runner(str(experiment), output_dir=str(tmp_path / "o"))


def test_command_help_prints_the_command_instead_of_running_it(capsys):
    """`compare --help` used to reach run_comparison as an override named help (fire passes unknown flags on)."""
    from monai_hyperconv.analysis.__main__ import run_analysis_cli

    run_analysis_cli(["compare", "--help"])
    out = capsys.readouterr().out
    assert out.startswith("python -m monai_hyperconv.analysis compare") and "Train and compare network fragments" in out
