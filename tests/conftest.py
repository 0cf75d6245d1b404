"""Shared test settings: deterministic, and light on the 2-core CI machine."""

import contextlib
import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def release_run_locks():
    """Release every run lock this process holds after the test, so that the next test may take the same folder."""
    from monai_hyperconv.utils import release_all

    yield
    release_all()


@contextlib.contextmanager
def _torch_cpu_settings(threads: int, mkldnn: bool):
    saved = torch.get_num_threads(), torch.backends.mkldnn.enabled
    torch.set_num_threads(threads)
    torch.backends.mkldnn.enabled = mkldnn
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        torch.backends.mkldnn.enabled = saved[1]


@pytest.fixture(scope="module")
def one_thread():
    """For modules of many tiny ops, which a second thread only slows down on a shared 2-core machine."""
    with _torch_cpu_settings(1, torch.backends.mkldnn.enabled):
        yield


@pytest.fixture(scope="module")
def one_thread_no_onednn():
    """For modules that run many tiny networks once each: oneDNN spends seconds creating a primitive per new
    convolution shape, and a second thread only adds synchronisation (much of it spinning when the CPU is shared).
    Results do not depend on either setting."""
    with _torch_cpu_settings(1, False):
        yield
