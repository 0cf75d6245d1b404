"""CS-MRI reconstruction data: T1 slice datalists (real or embedded ICBM152) and the bundle's evaluation reports.

Real data: a folder of T1-weighted NIfTI files under ``dataset_dir``, searched recursively, either 3D volumes
(ABIDE-like: each volume gives ``slices_per_volume`` axial slices spread over ``slice_range`` of its axial extent) or
2D slices (``(H, W)`` or ``(H, W, 1)``). Items are grouped by subject (a ``sub-*`` path component, else the folder
holding the file without session / modality folders, else the file) and split by subject in the paper's
2000 / 500 / 1000 proportions, so no subject crosses splits.

Embedded data (when ``dataset_dir`` holds no NIfTI file): axial slices of the ICBM152 2009a T1 template shipped
inside nilearn, one synthetic subject per seed with its own smooth deformation, bias field, tissue contrast and
slice positions (:func:`generate_icbm152_slices`), written as 2D NIfTI files and then read like real 2D slices.

:class:`LoadMRISliced` turns an item into a channel-first 2D slice in [0, 1]; the bundle then resizes it, copies it
to the target ``label`` and replaces ``image`` by its zero-filled reconstruction
(:class:`~monai_hyperconv.transforms.kspace.PoissonUndersampled`).

The evaluation helpers write the per-image test PSNR / SSIM report with its violin plot
(:class:`CSMRITestReport`) and the panel of example reconstructions at several k-space noise levels
(:func:`plot_noise_examples`, the paper's Figure 9); the k-space noise sweep itself reuses
:class:`monai_hyperconv.workflows.NoiseSweep` with :func:`~monai_hyperconv.transforms.kspace.make_kspace_noise`.
"""

from __future__ import annotations

import csv
import glob
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Hashable, Mapping, Sequence

import nibabel as nib
import numpy as np
import torch
import torch.distributed as dist
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.metrics import PSNRMetric, SSIMMetric
from monai.transforms import LoadImage, MapTransform, Orientation, ScaleIntensityRangePercentiles
from monai.utils import ImageMetaKey

from monai_hyperconv.data.datalist import SPLIT_KEYS, datalist_source, read_split_json, reusable_datalist
from monai_hyperconv.data.embedded import warn_if_generated_differently
from monai_hyperconv.data.lits import split_counts
from monai_hyperconv.transforms.kspace import make_kspace_noise
from monai_hyperconv.workflows.atomic import atomic_write_csv, atomic_write_json
from monai_hyperconv.workflows.checkpoint import is_main_process
from monai_hyperconv.workflows.validation import check_finite, ensure_writable_dir, require_files

__all__ = [
    "CSMRI_SPLIT",
    "SPLIT_KEYS",
    "NIFTI_PATTERNS",
    "subject_of",
    "find_csmri_images",
    "split_by_subject",
    "generate_icbm152_slices",
    "ensure_icbm152_slices",
    "write_csmri_datalist",
    "load_csmri_datalist",
    "prepare_csmri_datalist",
    "csmri_inference_files",
    "LoadMRISliced",
    "image_name",
    "CSMRITestReport",
    "read_test_report",
    "plot_test_violins",
    "plot_noise_examples",
]

#: the paper's training / validation / test slice counts (ABIDE), used as split proportions
CSMRI_SPLIT = (2000, 500, 1000)
NIFTI_PATTERNS = ("*.nii", "*.nii.gz")
#: written next to the generated slices: the generator's arguments
EMBEDDED_MANIFEST = "icbm152_slices.json"
# folders that do not identify a subject (sessions, modality folders of ABIDE / BIDS layouts)
_NON_SUBJECT_DIR = re.compile(r"^(ses|session|anat|func|dwi|scans?)([-_].*|\d*)$", re.IGNORECASE)
_BIDS_SUBJECT = re.compile(r"^sub-[A-Za-z0-9]+")

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------------------
# datalists
# ---------------------------------------------------------------------------------------------------------------


def _is_nifti(name: str) -> bool:
    return name.endswith(".nii") or name.endswith(".nii.gz")


def _nifti_files(folder: str) -> list[str]:
    """Every NIfTI file under ``folder`` (recursive, hidden folders skipped), sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(root, f) for f in files if _is_nifti(f) and not f.startswith(".")]
    return sorted(found)


def subject_of(relpath: str) -> str:
    """The subject a file belongs to, from its path relative to the dataset folder.

    A BIDS ``sub-XXX`` component wins; otherwise the folders holding the file, without session or modality folders
    (``session_1``, ``anat_1``, ``ses-01``...), e.g. ``Caltech/0051456`` for ABIDE's
    ``Caltech/0051456/session_1/anat_1/mprage.nii.gz``; a file directly in the dataset folder is its own subject.
    """
    parts = relpath.replace(os.sep, "/").split("/")
    for p in parts:
        m = _BIDS_SUBJECT.match(p)
        if m:
            return m.group(0)
    folders = [p for p in parts[:-1] if not _NON_SUBJECT_DIR.match(p)]
    if folders:
        return "/".join(folders)
    name = parts[-1]
    return name[: -len(".nii.gz")] if name.endswith(".nii.gz") else os.path.splitext(name)[0]


def _spatial_shape(path: str) -> tuple[int, ...]:
    """Shape of a NIfTI file without singleton axes beyond the second (read from the header only)."""
    try:
        shape = tuple(int(s) for s in nib.load(path).shape)
    except Exception as e:  # not a NIfTI file, truncated header...
        raise ValueError(f"Cannot read the NIfTI header of {path}: {e}") from e
    return shape[:2] + tuple(s for s in shape[2:] if s != 1)


def find_csmri_images(
    dataset_dir: str, slices_per_volume: int = 5, slice_range: Sequence[float] = (0.3, 0.7)
) -> list[dict]:
    """Items ``{"image", "slice", "subject"}`` for every 2D slice file and for chosen axial slices of every volume.

    Args:
        dataset_dir: folder searched recursively for ``.nii`` / ``.nii.gz`` files.
        slices_per_volume: axial slices taken from each 3D volume, evenly spaced over ``slice_range``.
        slice_range: fractions of the axial extent (after RAS reorientation) between which slices are taken.

    Returns:
        items sorted by path; ``slice`` is the axial position as a fraction in [0, 1] for volumes, -1 for 2D files.

    Raises:
        FileNotFoundError: when ``dataset_dir`` does not exist.
        ValueError: naming a file that is neither a 2D slice nor a 3D volume.
    """
    if not os.path.isdir(dataset_dir):
        raise FileNotFoundError(f"CS-MRI dataset folder {dataset_dir!r} does not exist.")
    lo, hi = float(slice_range[0]), float(slice_range[1])
    if not 0.0 <= lo <= hi <= 1.0 or slices_per_volume < 1:
        raise ValueError(f"slice_range must satisfy 0 <= lo <= hi <= 1 and slices_per_volume >= 1, got "
                         f"{slice_range} and {slices_per_volume}.")
    fractions = np.linspace(lo, hi, slices_per_volume) if slices_per_volume > 1 else np.array([(lo + hi) / 2])
    items = []
    for path in _nifti_files(dataset_dir):
        shape = _spatial_shape(path)
        subject = subject_of(os.path.relpath(path, dataset_dir))
        if len(shape) == 2:
            items.append({"image": path, "slice": -1.0, "subject": subject})
        elif len(shape) == 3:
            items += [{"image": path, "slice": round(float(f), 6), "subject": subject} for f in fractions]
        else:
            raise ValueError(f"{path}: shape {shape}; expected a 2D slice (H, W) or a 3D T1 volume (X, Y, Z).")
    return items


def split_by_subject(items: Sequence[dict], proportions: Sequence[float] = CSMRI_SPLIT, seed: int = 0) -> dict:
    """Seeded split of ``items`` into training / validation / test by their ``subject``, in ``proportions`` of subjects.

    Raises:
        ValueError: when there are fewer subjects than splits.
    """
    subjects = sorted({it["subject"] for it in items})
    try:
        counts = split_counts(len(subjects), proportions)
    except ValueError as e:
        raise ValueError(f"CS-MRI data: {e} (found {len(subjects)} subjects; splits are made by subject).") from e
    order = np.random.default_rng(seed).permutation(len(subjects))
    split, start = {}, 0
    for key, c in zip(SPLIT_KEYS, counts):
        chosen = {subjects[i] for i in order[start : start + c]}
        split[key] = [dict(it) for it in items if it["subject"] in chosen]
        start += c
    return split


def _t1_contrast(template, rng: np.random.Generator, z: int) -> np.ndarray:
    """One synthetic subject's axial T1 slice: template T1 re-weighted by tissue with a random contrast."""
    gm, wm, csf = (np.asarray(m[:, :, z]) for m in (template.gm, template.wm, template.csf))
    t1 = np.asarray(template.t1[:, :, z])
    # tissue-specific intensity offsets around the template's own contrast (WM bright, CSF dark in T1)
    offsets = rng.normal(0.0, 0.04, size=3)
    image = t1 + offsets[0] * gm + offsets[1] * wm + offsets[2] * csf
    return np.clip(image, 0.0, None) ** rng.uniform(0.85, 1.15)


def generate_icbm152_slices(
    dataset_dir: str,
    num_subjects: int = 35,
    slices_per_subject: int = 4,
    slice_range: Sequence[float] = (0.35, 0.75),
    max_displacement: float = 6.0,
    bias_strength: float = 0.15,
    seed: int = 0,
) -> list[str]:
    """Write the embedded CS-MRI data: 2D axial T1 slices of synthetic subjects made from the ICBM152 template.

    Subject ``i`` (seeded by ``(seed, i)``) gets its own tissue contrast, gamma, smooth 2D deformation and bias
    field (:mod:`monai_hyperconv.data.icbm152`), and ``slices_per_subject`` distinct axial positions drawn within
    ``slice_range`` of the brain's axial extent. Files: ``dataset_dir/sub-XXX/sub-XXX_slice-ZZZ.nii.gz``
    (197×233 at 1 mm, float32 in [0, 1]) plus a manifest of these arguments. Everything is written in a temporary
    folder first and moved into place, so an interrupted run leaves no partial data set.

    Returns:
        the written slice paths.
    """
    from monai_hyperconv.data.icbm152 import load_icbm152, random_bias_field, random_deform

    if num_subjects < len(SPLIT_KEYS) or slices_per_subject < 1:
        raise ValueError(f"need num_subjects >= 3 and slices_per_subject >= 1, got {num_subjects}, {slices_per_subject}.")
    template = load_icbm152(1)
    z_brain = np.where(np.asarray(template.brain_mask).any(axis=(0, 1)))[0]
    z_lo, z_hi = (int(z_brain[0] + f * (z_brain[-1] - z_brain[0])) for f in slice_range)
    if z_hi - z_lo + 1 < slices_per_subject:
        raise ValueError(f"slice_range {slice_range} holds {z_hi - z_lo + 1} slices, fewer than {slices_per_subject}.")
    parent = os.path.dirname(os.path.abspath(dataset_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".icbm152_slices.", dir=parent)
    names = []
    try:
        for i in range(num_subjects):
            rng = np.random.default_rng([seed, i])
            zs = np.sort(rng.choice(np.arange(z_lo, z_hi + 1), size=slices_per_subject, replace=False))
            field_seed = int(rng.integers(2**31))
            bias = random_bias_field(template.shape[:2], seed=int(rng.integers(2**31)), strength=bias_strength)
            subject = f"sub-{i:03d}"
            os.makedirs(os.path.join(tmp, subject))
            for z in zs:
                image = _t1_contrast(template, rng, int(z)) * bias
                # one deformation per subject: its slices share the anatomy change
                image = random_deform([image], seed=field_seed, max_displacement=max_displacement, control_spacing=32)[0]
                image = np.clip(image / max(float(np.percentile(image, 99.5)), 1e-6), 0.0, 1.0).astype(np.float32)
                affine = np.array(template.affine, dtype=np.float64)
                affine[:3, 3] += affine[:3, 2] * int(z)
                name = os.path.join(subject, f"{subject}_slice-{int(z):03d}.nii.gz")
                nib.save(nib.Nifti1Image(image, affine), os.path.join(tmp, name))
                names.append(name)
        manifest = {
            "generator": "monai_hyperconv.data.csmri.generate_icbm152_slices",
            "source": "ICBM152 2009a symmetric T1 and GM/WM maps shipped with nilearn",
            "num_subjects": num_subjects,
            "slices_per_subject": slices_per_subject,
            "slice_range": list(slice_range),
            "max_displacement": max_displacement,
            "bias_strength": bias_strength,
            "seed": seed,
        }
        with open(os.path.join(tmp, EMBEDDED_MANIFEST), "w") as f:
            json.dump(manifest, f, indent=1)
        if os.path.isdir(dataset_dir):
            os.rmdir(dataset_dir)  # only an empty folder (the caller checked it holds no data) is replaced
        os.replace(tmp, dataset_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [os.path.join(dataset_dir, n) for n in names]


def ensure_icbm152_slices(dataset_dir: str, **kwargs) -> bool:
    """Generate the embedded slices in ``dataset_dir`` when it is missing or holds no NIfTI file.

    A folder holding other files but no NIfTI is not touched: that is an error naming it (it may be a user's
    folder pointed at by mistake). Returns True when data was generated.
    """
    if os.path.isdir(dataset_dir):
        if _nifti_files(dataset_dir):
            warn_if_generated_differently(dataset_dir, EMBEDDED_MANIFEST, kwargs)
            return False
        if os.listdir(dataset_dir):
            raise FileNotFoundError(
                f"CS-MRI dataset folder {dataset_dir!r} holds no .nii/.nii.gz file but other files; expected T1 "
                "NIfTI volumes or slices, or an empty / missing folder to generate the embedded data in."
            )
    logger.info(f"Generating the embedded ICBM152 CS-MRI slices in {dataset_dir} ({kwargs or 'defaults'}).")
    generate_icbm152_slices(dataset_dir, **kwargs)
    return True


def write_csmri_datalist(
    split: Mapping[str, Sequence[dict]], path: str, base_dir: str, source: dict | None = None
) -> str:
    """Write the split as JSON (image paths relative to ``base_dir``), atomically; ``source``
    (:func:`~monai_hyperconv.data.datalist.datalist_source`) records what the split was made from."""
    content = {
        k: [{**it, "image": os.path.relpath(it["image"], base_dir)} for it in items] for k, items in split.items()
    }
    if source is not None:
        content["source"] = source
    ensure_writable_dir(os.path.dirname(os.path.abspath(path)), "datalist folder")
    return atomic_write_json(path, content)


def load_csmri_datalist(path: str, base_dir: str) -> dict[str, list]:
    """Read a datalist JSON of :func:`write_csmri_datalist`; check its keys and that every listed file exists.

    Raises:
        ValueError: naming the JSON when it is malformed or lacks a split or an item key.
        FileNotFoundError: naming a listed file that does not exist.
    """
    content = read_split_json(path)
    out = {}
    for key in SPLIT_KEYS:
        items = []
        for it in content[key]:
            if not isinstance(it, dict) or "image" not in it:
                raise ValueError(f"Datalist {path!r}: an item of {key!r} has no 'image' entry: {it}.")
            image = it["image"] if os.path.isabs(it["image"]) else os.path.join(base_dir, it["image"])
            require_files([image], f"file listed in {path}")
            items.append({"slice": -1.0, "subject": subject_of(it["image"]), **it, "image": image})
        out[key] = items
    return out


def prepare_csmri_datalist(
    dataset_dir: str,
    datalist_file: str | None = None,
    seed: int = 0,
    proportions: Sequence[float] = CSMRI_SPLIT,
    slices_per_volume: int = 5,
    slice_range: Sequence[float] = (0.3, 0.7),
    synthetic: Mapping | None = None,
) -> dict[str, list]:
    """The bundle's datalist: reuse ``datalist_file`` when it exists, else find, split by subject and write it.

    When ``dataset_dir`` is missing or empty and ``synthetic`` is not None, the embedded ICBM152 slices are
    generated there first (``synthetic`` = arguments of :func:`generate_icbm152_slices`). In a distributed run
    rank 0 prepares and the other ranks wait, so data are generated and the JSON written once.

    Returns:
        ``{"training", "validation", "test"}`` lists of ``{"image", "slice", "subject"}`` with absolute paths.
    """
    distributed = dist.is_available() and dist.is_initialized()
    if not distributed or dist.get_rank() == 0:
        result = _prepare(dataset_dir, datalist_file, seed, proportions, slices_per_volume, slice_range, synthetic)
    if distributed:
        dist.barrier()
        if dist.get_rank() != 0:
            result = _prepare(dataset_dir, datalist_file, seed, proportions, slices_per_volume, slice_range, None)
    return result


def _prepare(dataset_dir, datalist_file, seed, proportions, slices_per_volume, slice_range, synthetic):
    if synthetic is not None:
        ensure_icbm152_slices(dataset_dir, **dict(synthetic))
    items = find_csmri_images(dataset_dir, slices_per_volume, slice_range)
    if not items:
        raise FileNotFoundError(f"No T1 NIfTI file (.nii / .nii.gz, 2D slices or 3D volumes) under {dataset_dir!r}.")
    names = [f"{os.path.relpath(it['image'], dataset_dir)}@{it['slice']:.4f}" for it in items]
    source = datalist_source(dataset_dir, seed, names)
    if reusable_datalist(datalist_file, source):
        return load_csmri_datalist(datalist_file, dataset_dir)
    try:
        split = split_by_subject(items, proportions, seed)
    except ValueError as e:
        raise ValueError(f"CS-MRI dataset folder {dataset_dir!r}: {e}") from e
    if datalist_file:
        write_csmri_datalist(split, datalist_file, dataset_dir, source)
    return split


def csmri_inference_files(
    input_dir: str | None = None,
    dataset_dir: str | None = None,
    datalist_file: str | None = None,
    seed: int = 0,
    slices_per_volume: int = 5,
    slice_range: Sequence[float] = (0.3, 0.7),
    synthetic: Mapping | None = None,
) -> list[dict]:
    """Inputs of the inference workflow: the NIfTI slices / volumes of ``input_dir``, or the test split of the
    bundle's datalist (:func:`prepare_csmri_datalist` with the other arguments).

    Raises:
        FileNotFoundError: naming ``input_dir`` when it holds no NIfTI file.
    """
    if input_dir:
        items = find_csmri_images(input_dir, slices_per_volume, slice_range)
        if not items:
            raise FileNotFoundError(f"No .nii / .nii.gz file in the inference input folder {input_dir!r}.")
        return items
    if dataset_dir is None:
        raise ValueError("Give input_dir, or dataset_dir (and datalist_file) to use the test split.")
    split = prepare_csmri_datalist(dataset_dir, datalist_file, seed, CSMRI_SPLIT, slices_per_volume, slice_range, synthetic)
    return [dict(it) for it in split["test"]]


# ---------------------------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------------------------


class LoadMRISliced(MapTransform):
    """Load a T1 item as a channel-first 2D slice ``(1, H, W)`` with intensities in [0, 1].

    A 2D file (``(H, W)`` or ``(H, W, 1)``) is read as is; a 3D volume is reoriented to RAS and its axial slice at
    fraction ``data[slice_key]`` of the axial extent is taken (the slice index is stored as the ``patch_index``
    metadata, so that saved outputs of several slices of one volume get distinct names). Intensities are scaled
    per volume (per slice for 2D files) from the minimum to the ``upper`` percentile, then clipped to [0, 1].

    Args:
        keys: keys holding file paths (or arrays).
        slice_key: key of the axial slice fraction (-1 or missing for 2D files).
        upper: upper percentile mapped to 1 (robust to a few bright voxels).
        allow_missing_keys: do not raise when a key is missing.

    Raises:
        ValueError: naming the file when it is not 2D / 3D or holds NaN / infinite values.
    """

    def __init__(
        self, keys: KeysCollection = "image", slice_key: str = "slice", upper: float = 99.5, allow_missing_keys=False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.slice_key = slice_key
        self.loader = LoadImage(image_only=True)
        self.orient = Orientation(axcodes="RAS", labels=None)  # labels from the (RAS) space of the MetaTensor
        self.scale = ScaleIntensityRangePercentiles(lower=0.0, upper=upper, b_min=0.0, b_max=1.0, clip=True)
        self._last: tuple[str, MetaTensor] | None = None  # consecutive slices of one volume: read it once

    def _load(self, path) -> MetaTensor:
        if not isinstance(path, (str, os.PathLike)):
            img = MetaTensor(torch.as_tensor(np.asarray(path), dtype=torch.float32))
            img.meta[ImageMetaKey.FILENAME_OR_OBJ] = "<in-memory array>"
            return img
        path = os.fspath(path)
        last = self._last  # read once: CacheDataset may call this from several threads
        if last is not None and last[0] == path:
            return last[1]
        require_files([path], "T1 image")
        img = self.loader(path)
        self._last = (path, img)
        return img

    def slice_of(self, path, fraction: float = -1.0) -> MetaTensor:
        """The scaled 2D slice ``(1, H, W)`` of one file (see the class docstring)."""
        img = self._load(path)
        source = str(img.meta.get(ImageMetaKey.FILENAME_OR_OBJ, path))
        data = img.as_tensor() if isinstance(img, MetaTensor) else torch.as_tensor(img)
        shape = tuple(data.shape)
        spatial = shape[:2] + tuple(s for s in shape[2:] if s != 1)
        if len(shape) < 2 or len(spatial) not in (2, 3):
            raise ValueError(f"{source}: shape {shape}; expected a 2D slice (H, W) or a 3D T1 volume (X, Y, Z).")
        check_finite(data, source, "image")
        data = data.float().reshape(spatial)
        affine = torch.as_tensor(img.affine if isinstance(img, MetaTensor) else np.eye(4), dtype=torch.float64)
        meta = {ImageMetaKey.FILENAME_OR_OBJ: source}
        if len(spatial) == 3:
            if not 0.0 <= float(fraction) <= 1.0:
                raise ValueError(f"{source} is a 3D volume: expected a slice fraction in [0, 1], got {fraction}.")
            vol = self.orient(MetaTensor(data[None], affine=affine))
            vol = self.scale(vol)
            k = int(round(float(fraction) * (vol.shape[-1] - 1)))
            affine = vol.affine.clone()
            affine[:3, 3] += affine[:3, 2] * k
            data, meta[ImageMetaKey.PATCH_INDEX] = vol.as_tensor()[..., k], k
        else:
            data = self.scale(data[None])
            data = data.as_tensor() if isinstance(data, MetaTensor) else data
        # what LoadImage records, so that writers (SaveImage) and inverses find the slice's own geometry
        meta.update({"original_affine": affine.clone(), ImageMetaKey.SPATIAL_SHAPE: np.asarray(data.shape[1:]),
                     "original_channel_dim": "no_channel", "space": "RAS"})
        return MetaTensor(data.float(), affine=affine, meta=meta)

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        fraction = float(d.get(self.slice_key, -1.0))
        for key in self.key_iterator(d):
            d[key] = self.slice_of(d[key], fraction)
        return d


# ---------------------------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------------------------


def image_name(meta: Mapping, index: int = 0, root_dir: str | None = None) -> str:
    """A readable name of batch item ``index`` from its collated metadata: the file's path relative to ``root_dir``
    (its base name without one), plus ``_z<k>`` for a slice ``k`` of a volume."""
    names = meta.get(ImageMetaKey.FILENAME_OR_OBJ, None)
    name = names[index] if isinstance(names, (list, tuple)) else names
    if not name:
        name = f"item{index}"
    elif root_dir:
        name = os.path.relpath(str(name), root_dir).replace(os.sep, "/")
    else:
        name = os.path.basename(str(name))
    patch = meta.get(ImageMetaKey.PATCH_INDEX, None)
    if patch is not None:
        k = patch[index] if isinstance(patch, (list, tuple, torch.Tensor)) else patch
        name = f"{name}_z{int(k)}"
    return name


def _savefig(fig, path: str) -> str:
    import matplotlib.pyplot as plt

    ensure_writable_dir(os.path.dirname(os.path.abspath(path)), "figure folder")
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
    return path


REPORT_FIELDS = ("model", "image", "psnr", "ssim", "zero_filled_psnr", "zero_filled_ssim")


class CSMRITestReport:
    """Per-image test PSNR / SSIM of one model and of its zero-filled input, as CSV, plus a violin plot.

    ``run()`` writes ``<output_dir>/test_psnr_<model_name>.csv`` (``REPORT_FIELDS``) and draws every
    ``test_psnr_*.csv`` of ``output_dir`` into ``test_psnr.png`` (one violin per model and one for the zero-filled
    input), so evaluations of several models into the same ``output_dir`` compare in one figure.

    Args:
        network: the trained model.
        dataloader: test batches with the zero-filled ``image`` and the fully sampled ``label``.
        output_dir: folder of the CSV and PNG.
        model_name: label of this model.
        device: where the network runs.
        spatial_dims: for SSIM.
        inferer: ``inferer(inputs, network)``; None calls the network.
        root_dir: image names in the CSV are file paths relative to it (the dataset folder); None: base names.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        dataloader,
        output_dir: str,
        model_name: str = "model",
        device: str | torch.device = "cpu",
        spatial_dims: int = 2,
        inferer=None,
        root_dir: str | None = None,
    ) -> None:
        self.network = network
        self.root_dir = root_dir
        self.dataloader = dataloader
        self.output_dir = output_dir
        self.model_name = model_name
        self.device = torch.device(device)
        self.spatial_dims = spatial_dims
        self.inferer = inferer
        self.logger = logging.getLogger(self.__class__.__name__)

    @property
    def csv_path(self) -> str:
        return os.path.join(self.output_dir, f"test_psnr_{self.model_name}.csv")

    @property
    def png_path(self) -> str:
        return os.path.join(self.output_dir, "test_psnr.png")

    def evaluate(self) -> list[tuple]:
        """Rows ``REPORT_FIELDS`` for every test image."""
        psnr = PSNRMetric(max_val=1.0, reduction="none")
        ssim = SSIMMetric(spatial_dims=self.spatial_dims, data_range=1.0, reduction="none")
        self.network.eval()
        rows = []
        with torch.no_grad():
            for batch in self.dataloader:
                inputs, target = batch["image"].to(self.device), batch["label"].to(self.device)
                pred = self.inferer(inputs, self.network) if self.inferer is not None else self.network(inputs)
                values = [m(y_pred=p, y=target).reshape(-1) for p in (pred, inputs) for m in (psnr, ssim)]
                meta = getattr(batch["label"], "meta", None) or batch.get("label_meta_dict", {}) or {}
                for i in range(inputs.shape[0]):
                    rows.append((self.model_name, image_name(meta, i, self.root_dir), *(float(v[i]) for v in values)))
        return rows

    def run(self) -> list[tuple]:
        rows = self.evaluate()
        if not rows:
            raise ValueError("CSMRITestReport: the test dataloader yielded no image.")
        mean = np.mean([r[2:] for r in rows], axis=0)
        self.logger.info(
            f"test {self.model_name}: {len(rows)} images, PSNR {mean[0]:.2f} dB, SSIM {mean[1]:.4f}; "
            f"zero-filled PSNR {mean[2]:.2f} dB, SSIM {mean[3]:.4f}"
        )
        if is_main_process():
            fmt = [(m, n, *(f"{v:.6f}" for v in vals)) for m, n, *vals in rows]
            ensure_writable_dir(self.output_dir, "report folder")
            atomic_write_csv(self.csv_path, REPORT_FIELDS, fmt)
            plot_test_violins(os.path.join(self.output_dir, "test_psnr_*.csv"), self.png_path)
        return rows


def read_test_report(path: str) -> list[dict]:
    """Rows of a CSV of :class:`CSMRITestReport` (numbers as floats).

    Raises:
        ValueError: naming the file when its header is not ``REPORT_FIELDS``.
    """
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != REPORT_FIELDS:
            raise ValueError(f"{path}: expected the header {','.join(REPORT_FIELDS)}, got {reader.fieldnames}.")
        return [{k: (v if k in ("model", "image") else float(v)) for k, v in row.items()} for row in reader]


def plot_test_violins(csv_paths: str | Sequence[str], path: str, metric: str = "psnr") -> str:
    """Violin plot of the per-image ``metric`` of every model in the report CSVs, the zero-filled input first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = sorted(glob.glob(csv_paths)) if isinstance(csv_paths, str) else list(csv_paths)
    if not paths:
        raise FileNotFoundError(f"No test report CSV matches {csv_paths!r}.")
    reports = [read_test_report(p) for p in paths]
    groups = {"zero-filled": [r[f"zero_filled_{metric}"] for r in reports[0]]}
    for rows in reports:
        if rows:
            groups[rows[0]["model"]] = [r[metric] for r in rows]
    fig, ax = plt.subplots(figsize=(1.8 + 1.4 * len(groups), 3.6))
    ax.violinplot(list(groups.values()), showmedians=True)
    ax.set_xticks(range(1, len(groups) + 1), list(groups), rotation=20)
    ax.set_ylabel(f"test {metric.upper()}" + (" (dB)" if metric == "psnr" else ""))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _savefig(fig, path)


def plot_noise_examples(
    network: torch.nn.Module,
    dataset,
    levels: Sequence[float],
    path: str,
    index: int = 0,
    acceleration: float = 8.0,
    mask_seed: int = 0,
    seed: int = 0,
    model_name: str = "model",
    device: str | torch.device = "cpu",
) -> str:
    """Panel of one test image at several k-space noise levels (the paper's Figure 9).

    Rows: noise levels; columns: fully sampled target, zero-filled input and the model's reconstruction, each titled
    with its PSNR against the target. The noise is that of the sweep (:func:`make_kspace_noise`, same seed).

    Args:
        network: the trained model.
        dataset: test items with the fully sampled ``label`` (``dataset[index]``).
        levels: k-space noise standard deviations.
        path: the PNG to write.
        index: which test item.
        acceleration, mask_seed: the mask, as in training.
        seed: noise seed.
        model_name: column title of the model.
        device: where the network runs.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not len(dataset):
        raise ValueError("plot_noise_examples: the test dataset is empty.")
    target = torch.as_tensor(dataset[index % len(dataset)]["label"]).float()[None].to(device)
    psnr = PSNRMetric(max_val=1.0)
    network.eval()
    fig, axes = plt.subplots(len(levels), 3, figsize=(7.5, 2.6 * len(levels)), squeeze=False)
    spatial_dims = target.ndim - 2
    for row, level in zip(axes, levels):
        noisy = make_kspace_noise("kspace_gaussian", float(level), seed, acceleration, spatial_dims, mask_seed)(target)
        with torch.no_grad():
            pred = network(noisy)
        panels = [("fully sampled", target, None), ("zero-filled", noisy, None), (model_name, pred, None)]
        for ax, (title, img, _) in zip(row, panels):
            ax.imshow(img[0, 0].detach().cpu().numpy().T, cmap="gray", vmin=0, vmax=1, origin="lower")
            if img is not target:
                title = f"{title}: {float(psnr(y_pred=img, y=target).mean()):.2f} dB"
            ax.set_title(title, fontsize=9)
            ax.axis("off")
        row[0].set_ylabel(f"sigma = {level:g}")
        row[0].axis("on")
        row[0].set_xticks([])
        row[0].set_yticks([])
    fig.tight_layout()
    return _savefig(fig, path)
