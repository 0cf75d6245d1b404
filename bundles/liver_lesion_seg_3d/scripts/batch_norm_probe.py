"""Why the 3D hyper networks' evaluation-mode validation exploded: batch-norm running averages against statistics
recomputed with the final weights.

Trains the 3D main job (train.yaml + cpu_quick.yaml, precise batch norm off) for a few epochs in this process, then
runs the bundle's validation twice: with the running averages training left, and after
``monai_hyperconv.handlers.recompute_batch_norm_stats`` on the epoch's training batches. Writes into a temporary
folder; the embedded data go to the main job's data folder (or ``--dataset_dir``). Run from the repository root:

    OMP_NUM_THREADS=1 python bundles/liver_lesion_seg_3d/scripts/batch_norm_probe.py --epochs 2
    # another network: --fragment configs/networks/unet_3x3.yaml
"""

import argparse
import os
import tempfile

from monai.bundle import ConfigParser

from monai_hyperconv.handlers import recompute_batch_norm_stats
from monai_hyperconv.utils import install_excepthook

BUNDLE = os.path.join("bundles", "liver_lesion_seg_3d")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--fragment", default=None, help="a configs/networks/*.yaml fragment")
    parser.add_argument("--dataset_dir", default=None, help="default: the main job's (generated on first use)")
    args = parser.parse_args()
    install_excepthook()
    configs = [os.path.join(BUNDLE, "configs", "train.yaml")]
    configs += [args.fragment] if args.fragment else []
    configs += [os.path.join(BUNDLE, "configs", "cpu_quick.yaml")]
    config = ConfigParser()
    config.read_config(configs)
    work = tempfile.mkdtemp(prefix="batch_norm_probe_")
    config.update({"bundle_root": BUNDLE, "ckpt_dir": os.path.join(work, "models"),
                   "output_dir": os.path.join(work, "outputs"), "max_epochs": args.epochs, "num_workers": 0,
                   "precise_bn_batches": 0})  # fmt: skip
    if args.dataset_dir:
        config["dataset_dir"] = args.dataset_dir
    config.get_parsed_content("setup")
    trainer = config.get_parsed_content("train#trainer")
    validator = config.get_parsed_content("validate#evaluator")
    network = config.get_parsed_content("network")
    trainer.run()

    def report(what: str) -> None:
        validator.run()
        metrics = ", ".join(f"{k} {float(v):.4g}" for k, v in validator.state.metrics.items())
        print(f"after {args.epochs} epochs, {what}: {metrics}", flush=True)

    report("running averages")
    batches = list(config.get_parsed_content("train#dataloader"))
    device = config.get_parsed_content("device")
    recompute_batch_norm_stats(network, [b["image"].to(device) for b in batches])
    report(f"statistics recomputed on {len(batches)} training batches")


if __name__ == "__main__":
    main()
