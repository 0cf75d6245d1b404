"""Does the data keep up with the model? Each bundle's train loader (slices/s) against its network's train step.

For each bundle, ``configs/train.yaml`` is parsed with MONAI's ConfigParser (overrides: ``bundle_root``,
``dataset_dir``, optionally ``image_size``, ``batch_size``, ``num_workers``, ``device``); the train dataloader
(``train#dataloader``) is iterated for ``--batches`` batches after one warm-up batch (``slices/s`` counts samples
of the batch), and the trainer's own network, loss and optimizer (``train#trainer``) run ``--steps`` train steps
on one of those batches (forward, loss, backward, step). ``loader / model`` below 1 means the model would wait for
data. When ``dataset_dir`` is missing or empty the bundle generates its embedded data there first (this can take
minutes; pass ``--dataset_dir`` to reuse a folder). Bundle configs are not changed.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/data_speed.py [--bundles liver_lesion_seg ...] [--dataset_dir DIR] [--device cuda]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from monai.bundle import ConfigParser

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUNDLES = ("liver_lesion_seg", "ms_lesion_seg", "csmri_recon")


def parse_bundle(bundle: str, args) -> ConfigParser:
    parser = ConfigParser()
    root = os.path.join(REPO, "bundles", bundle)
    parser.read_config(os.path.join(root, "configs", "train.yaml"))
    parser["bundle_root"] = root
    if args.dataset_dir:
        parser["dataset_dir"] = os.path.join(args.dataset_dir, bundle) if len(args.bundles) > 1 else args.dataset_dir
    for key in ("image_size", "batch_size", "num_workers"):
        if getattr(args, key) is not None:
            parser[key] = getattr(args, key)
    parser["device"] = f"$torch.device('{args.device}')"
    return parser


def batch_size_of(batch) -> int:
    """Samples (slices) in a collated batch: the leading size of its first tensor."""
    if isinstance(batch, dict):
        return batch_size_of(next(v for v in batch.values() if isinstance(v, torch.Tensor)))
    if isinstance(batch, (list, tuple)):
        return batch_size_of(batch[0])
    return int(batch.shape[0])


def loader_rate(loader, batches: int) -> tuple[float, object]:
    iterator = iter(loader)
    first = next(iterator)  # workers start, caches fill
    slices, start = 0, time.perf_counter()
    for _ in range(batches):
        try:
            slices += batch_size_of(next(iterator))
        except StopIteration:
            iterator = iter(loader)
            slices += batch_size_of(next(iterator))
    return slices / (time.perf_counter() - start), first


def model_rate(trainer, batch, steps: int, device: torch.device) -> float:
    inputs, targets = trainer.prepare_batch(batch, device, False)[:2]
    net, loss_fn, optimizer = trainer.network, trainer.loss_function, trainer.optimizer
    net.train()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(net(inputs), targets).backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return inputs.shape[0] / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundles", nargs="+", default=list(BUNDLES), choices=BUNDLES)
    parser.add_argument("--dataset_dir", default=None, help="data folder (one sub-folder per bundle when several)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--image_size", type=int, default=None)
    parser.add_argument("--batch_size", type=int, default=None)
    parser.add_argument("--num_workers", type=int, default=None)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}, {os.cpu_count()} CPUs\n")
    print("| bundle | batch | workers | loader slices/s | model train slices/s | loader / model |")
    print("|---|---|---|---|---|---|")
    for bundle in args.bundles:
        config = parse_bundle(bundle, args)
        loader = config.get_parsed_content("train#dataloader")
        loader_speed, batch = loader_rate(loader, args.batches)
        model_speed = model_rate(config.get_parsed_content("train#trainer"), batch, args.steps, device)
        print(
            f"| {bundle} | {loader.batch_size} | {loader.num_workers} | {loader_speed:.1f} | {model_speed:.1f} | "
            f"{loader_speed / model_speed:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
