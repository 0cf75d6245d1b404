"""Loading is safe from many threads: a multi-contrast stack keeps its channels while other threads read single files.

MONAI 1.6.1's NibabelReader keeps the file names of its last read() on the reader, shared by every thread that calls
one LoadImaged; docs/monai_nibabelreader_race.md reproduces it with MONAI alone.
"""

import sys
from multiprocessing.pool import ThreadPool

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import CacheDataset
from monai.transforms import Compose

from monai_hyperconv.transforms import CheckedLoadImaged


@pytest.fixture
def switch_often():
    """Switch threads every 10 µs, so that reads interleave as on a busy machine."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


def _files(folder, n, shape=(12, 14, 10)):
    paths = []
    for i in range(n):
        path = folder / f"contrast{i}.nii.gz"
        nib.save(nib.Nifti1Image(np.full(shape, float(i), np.float32), np.eye(4)), str(path))
        paths.append(str(path))
    return paths


def test_one_transform_loads_stacks_from_many_threads(tmp_path, switch_often):
    contrasts = _files(tmp_path, 4)
    load = CheckedLoadImaged(keys="image", image_only=True, ensure_channel_first=True)
    # stacks of four interleaved with single-file reads (the MS bundle reads four contrasts, then each rater mask)
    entries = [{"image": contrasts} if i % 2 == 0 else {"image": contrasts[i % 4]} for i in range(400)]
    with ThreadPool(8) as pool:
        channels = pool.map(lambda d: int(load(d)["image"].shape[0]), entries, chunksize=1)
    truncated = sum(c != (4 if i % 2 == 0 else 1) for i, c in enumerate(channels))
    assert truncated == 0, f"{truncated} of 400 loads have the wrong channel count"


def test_threaded_cache_equals_the_serial_one(tmp_path, switch_often):
    """Every cached entry holds its own files, in order, whatever the number of cache threads."""
    entries = []
    for k in range(12):
        folder = tmp_path / f"tp{k}"
        folder.mkdir()
        paths = []
        for c in range(4):
            path = folder / f"c{c}.nii.gz"
            nib.save(nib.Nifti1Image(np.full((8, 9, 7), 10.0 * k + c, np.float32), np.eye(4)), str(path))
            paths.append(str(path))
        mask = folder / "mask.nii.gz"
        nib.save(nib.Nifti1Image(np.full((8, 9, 7), k, np.uint8), np.eye(4)), str(mask))
        entries.append({"image": paths, "mask": str(mask)})
    transform = Compose([CheckedLoadImaged(keys=["image", "mask"], image_only=True, ensure_channel_first=True)])
    serial = CacheDataset(entries, transform, num_workers=0, progress=False)
    threaded = CacheDataset(entries, transform, num_workers=6, progress=False)
    for k in range(len(entries)):
        a, b = serial[k], threaded[k]
        assert b["image"].shape[0] == 4 and torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
        assert float(b["image"][3].mean()) == 10.0 * k + 3 and int(b["mask"].max()) == k


def test_ms_bundle_cache_with_threads_equals_the_serial_one(tmp_path):
    """The MS bundle's 3D loading (four contrasts, two rater masks) cached by 4 threads, entry by entry as by one."""
    import os

    from helpers import TINY_BUNDLE_OVERRIDES
    from monai.bundle import ConfigParser

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = ConfigParser()
    parser.read_config(os.path.join(root, "bundles", "ms_lesion_seg", "configs", "train.yaml"))
    parser.update({"bundle_root": str(tmp_path), **TINY_BUNDLE_OVERRIDES["ms_lesion_seg"]})
    assert parser.get_parsed_content("cache_workers") >= 2  # the bundle caches with threads
    train, val = parser.get_parsed_content("fold_split")
    data = list(train) + list(val)
    transform = Compose(parser.get_parsed_content("preprocessing"))
    serial = CacheDataset(data, transform, num_workers=0, progress=False)
    threaded = CacheDataset(data, transform, num_workers=4, progress=False)
    for a, b in zip(serial, threaded, strict=True):
        assert b["image"].shape[0] == 4
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
