"""Loading images so that a failure names the file, from any number of threads."""

from __future__ import annotations

import copy
import os
import threading

from monai.transforms import LoadImaged

from monai_hyperconv.transforms.validation import SOURCE_FILES, check_real_valued

__all__ = ["CheckedLoadImaged"]


class CheckedLoadImaged(LoadImaged):
    """MONAI's ``LoadImaged`` whose read errors name the file (a truncated ``.nii.gz`` otherwise raises a bare
    ``EOFError``), and that any number of threads may call at once. Same arguments as ``LoadImaged``.

    It refuses complex-valued NIfTI files (:func:`check_real_valued`; read as float, the imaginary part would be
    dropped), and records the files of a multi-file stack, one per channel, under :data:`SOURCE_FILES`.

    Thread safety: MONAI 1.6.1's ``NibabelReader.read()`` keeps the file names on the reader object and
    ``get_data()`` zips the images with them, so one reader shared by the threads of a ``CacheDataset``
    (``num_workers`` > 1) cut a multi-file stack (the MS bundle's four contrasts) to one channel whenever another
    thread read a single file in between (docs/monai_nibabelreader_race.md). Each thread therefore reads through its
    own copy of the loader and its readers, made from this one at the thread's first call.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._loader = _FileNamingLoader(self._loader)


class _FileNamingLoader:
    """Wraps a ``LoadImage``: every failure names the file(s) it was reading; one copy of it per calling thread."""

    def __init__(self, loader) -> None:
        self.loader = loader
        self._threads = threading.local()

    def _thread_loader(self):
        loader = getattr(self._threads, "loader", None)
        if loader is None:  # this thread's own readers: NibabelReader keeps per-read state on itself
            loader = self._threads.loader = copy.deepcopy(self.loader)
        return loader

    def __call__(self, filename, reader=None):
        files = [os.fspath(f) for f in filename] if isinstance(filename, (list, tuple)) else [filename]
        for f in files:
            if isinstance(f, str):
                check_real_valued(f)
        try:
            image = self._thread_loader()(filename, reader)
        except Exception as e:
            raise ValueError(
                f"{filename}: cannot be read ({type(e).__name__}: {' '.join(str(e).split())[:300]}); expected a "
                "complete image file (truncated download or copy?)."
            ) from e
        meta = getattr(image, "meta", None)
        if len(files) > 1 and meta is not None:  # MONAI records only the first file of a stack: keep them all
            meta[SOURCE_FILES] = files
        return image

    def __getstate__(self) -> dict:  # copies and pickles (loader workers) start without per-thread loaders
        return {"loader": self.loader}

    def __setstate__(self, state: dict) -> None:
        self.loader = state["loader"]
        self._threads = threading.local()

    def __getattr__(self, name):  # register(), readers... of the wrapped LoadImage
        if name in ("loader", "_threads") or name.startswith("__"):
            raise AttributeError(name)  # not set yet (unpickling): no recursion into self.loader
        return getattr(self.loader, name)
