"""Training dynamics of every convolution, per step: how fast each kernel moves, how large its gradients are.

A hyper-convolution's kernel is the output of a small network, so a learning rate that moves a regular kernel by a
given fraction per step can move a generated kernel by much more or much less. :class:`TrainingMonitor` records,
for each convolution with a kernel of 3 or more taps along an axis:

- ``rel_change``: ``||K_t - K_{t-1}|| / ||K_{t-1}||`` of the (generated) kernel between two recorded steps;
- ``grad_norm``: the gradient norm of the parameters behind the kernel (for a hyper layer, also per part of its
  kernel network: ``grad_hidden`` the hidden layers, ``grad_out_weight`` / ``grad_out_bias`` the output layer);
- ``kernel_norm`` and ``smoothness`` (the paper's mean absolute Laplacian, and ``smoothness_rel``, its scale-free
  variant).

Rows go to a CSV (one per layer and recorded step) and, when ``tensorboard`` is installed, to TensorBoard.
"""

from __future__ import annotations

import csv
import os
import statistics

import torch
from ignite.engine import Engine, Events
from torch import nn

from monai_hyperconv.analysis.smoothness import conv_kernels, mean_abs_laplacian
from monai_hyperconv.layers import HyperConvBase
from monai_hyperconv.utils.distributed import is_main_process, unwrap_module
from monai_hyperconv.utils.flags import as_bool

__all__ = ["TrainingMonitor", "monitor_command", "summarize_monitor"]

COLUMNS = (
    "iteration", "epoch", "layer", "kind", "rel_change", "kernel_norm", "grad_norm", "grad_hidden", "grad_out_weight",
    "grad_out_bias", "smoothness", "smoothness_rel",
)  # fmt: skip


def _norm(tensors) -> float:
    grads = [t for t in tensors if t is not None]
    return float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))) if grads else float("nan")


class TrainingMonitor:
    """Ignite handler (attach to the trainer): per-layer kernel movement, gradient norms and smoothness.

    Args:
        network: the trained network (a DDP wrapper is unwrapped).
        output_dir: folder of ``training_monitor.csv`` (and TensorBoard events under ``tensorboard/monitor``).
        enabled: off by default (bundles expose it as ``monitor_training``); when off, ``attach`` does nothing.
        interval: record every ``interval`` iterations (the relative change is then over that many steps).
        tensorboard: also write TensorBoard scalars when ``tensorboard`` is installed.
    """

    def __init__(
        self,
        network: nn.Module,
        output_dir: str,
        enabled: bool | str = False,
        interval: int = 1,
        tensorboard: bool = True,
    ) -> None:
        if int(interval) < 1:
            raise ValueError(f"interval must be an integer >= 1 (iterations), got {interval!r}.")
        self.network = network
        self.output_dir = os.fspath(output_dir)
        self.enabled = as_bool(enabled, "monitor_training")
        self.interval = int(interval)
        self.tensorboard = tensorboard
        self.path = os.path.join(self.output_dir, "training_monitor.csv")
        self._previous: dict[str, torch.Tensor] = {}
        self._writer = None

    def attach(self, engine: Engine) -> None:
        if not self.enabled or not is_main_process():
            return
        os.makedirs(self.output_dir, exist_ok=True)
        with open(self.path, "w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerow(COLUMNS)
        if self.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self._writer = None
            else:
                self._writer = SummaryWriter(os.path.join(self.output_dir, "tensorboard", "monitor"))
        engine.add_event_handler(Events.STARTED, self._remember)
        engine.add_event_handler(Events.ITERATION_COMPLETED(every=self.interval), self)
        engine.add_event_handler(Events.COMPLETED, self.close)

    def _remember(self, engine: Engine) -> None:
        for conv in conv_kernels(unwrap_module(self.network)):
            self._previous[conv.name] = conv.weight.clone()

    def layer_rows(self, engine: Engine) -> list[dict]:
        """One row per monitored layer at this step (gradients of the step just taken)."""
        rows = []
        for conv in conv_kernels(unwrap_module(self.network)):
            if not conv.has_laplacian:
                continue
            kernel = conv.weight.double()
            before = self._previous.get(conv.name)
            change = (kernel - before).norm() / before.norm().clamp_min(1e-30) if before is not None else None
            self._previous[conv.name] = conv.weight.clone()
            kernels = kernel.reshape(-1, *conv.kernel_size)
            row = {
                "iteration": engine.state.iteration,
                "epoch": engine.state.epoch,
                "layer": conv.name,
                "kind": conv.kind,
                "rel_change": float(change) if change is not None else float("nan"),
                "kernel_norm": float(kernel.norm()),
                "smoothness": float(mean_abs_laplacian(kernels, conv.spatial_dims).mean()),
                "smoothness_rel": float(mean_abs_laplacian(kernels, conv.spatial_dims, relative=True).mean()),
            }
            module = conv.module
            if isinstance(module, HyperConvBase):
                net = module.kernel_net
                row["grad_hidden"] = _norm(p.grad for p in net.hidden.parameters())
                row["grad_out_weight"] = _norm([net.out.weight.grad])
                row["grad_out_bias"] = _norm([net.out.bias.grad])
                row["grad_norm"] = _norm(p.grad for p in net.parameters())
            else:
                row["grad_norm"] = _norm([module.weight.grad])
            rows.append(row)
        return rows

    def __call__(self, engine: Engine) -> None:
        rows = self.layer_rows(engine)
        with open(self.path, "a", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS, restval="")
            writer.writerows(rows)
        if self._writer is not None:
            for row in rows:
                for key in ("rel_change", "grad_norm", "smoothness"):
                    self._writer.add_scalar(f"{row['layer']}/{key}", row[key], row["iteration"])

    def close(self, engine: Engine | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize_monitor(path: str, first_steps: int = 10) -> list[dict]:
    """Per layer of a ``training_monitor.csv``: median relative kernel change over the first ``first_steps``
    recorded steps and over all, the kernel norm at the first and last record, median gradient norm and the relative
    smoothness at the first and last record."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and "rel_change" not in rows[0]:
        raise ValueError(f"{path} is not a training monitor CSV (expected a 'rel_change' column).")
    layers: dict[str, list[dict]] = {}
    for row in rows:
        layers.setdefault(row["layer"], []).append(row)

    def values(rs, key):
        return [float(r[key]) for r in rs if r.get(key) not in ("", "nan", None)]

    out = []
    for layer, rs in layers.items():
        change = values(rs, "rel_change")
        out.append({
            "layer": layer, "kind": rs[0]["kind"], "steps": len(rs),
            "rel_change_first": statistics.median(change[:first_steps]) if change else float("nan"),
            "rel_change": statistics.median(change) if change else float("nan"),
            "kernel_norm_first": float(rs[0]["kernel_norm"]), "kernel_norm_last": float(rs[-1]["kernel_norm"]),
            "grad_norm": statistics.median(values(rs, "grad_norm")),
            "smoothness_rel_first": float(rs[0]["smoothness_rel"]), "smoothness_rel_last": float(rs[-1]["smoothness_rel"]),
        })  # fmt: skip
    return out


def monitor_command(csv_files: str | list[str], first_steps: int = 10) -> None:
    """``python -m monai_hyperconv.analysis monitor --csv_files "[a/training_monitor.csv, b/...]"``: per file, the
    network's median over layers of the relative kernel change per step (first steps and all) and the kernel norm
    growth, then one line per layer."""
    for path in [csv_files] if isinstance(csv_files, str) else list(csv_files):
        rows = summarize_monitor(path, first_steps)
        med = _median([r["rel_change_first"] for r in rows]), _median([r["rel_change"] for r in rows])
        growth = _median([r["kernel_norm_last"] / r["kernel_norm_first"] for r in rows])
        print(f"{path}: {len(rows)} layers, median relative kernel change per step: first {first_steps} steps "
              f"{med[0]:.4f}, all {rows[0]['steps']} steps {med[1]:.4f}; median kernel norm growth {growth:.3f}x")  # fmt: skip
        for r in rows:
            print(f"  {r['layer']:36s} {r['rel_change_first']:.4f} {r['rel_change']:.4f} "
                  f"norm {r['kernel_norm_first']:.2f}->{r['kernel_norm_last']:.2f}")  # fmt: skip
