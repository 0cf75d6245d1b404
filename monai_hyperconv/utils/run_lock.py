"""One run per folder: a lock file naming its holder, taken over when the holder is gone.

Two trainings into one ``ckpt_dir`` would move each other's fresh checkpoints to ``previous/`` and overwrite each
other's files. A run therefore holds ``<folder>/.run.lock`` (pid, host, start time, command line) from the moment
it is set up until its process ends; a second run into the folder refuses, naming the holder. A lock whose
process has died on this host (killed, crashed) is stale: the next run says so and takes it over, and removes the
temporary files a killed atomic write left behind.
"""

from __future__ import annotations

import atexit
import datetime
import json
import logging
import os
import socket
import sys

from monai_hyperconv.utils.atomic import remove_stale_temporaries
from monai_hyperconv.utils.files import ensure_writable_dir

__all__ = ["LOCK_FILENAME", "FolderInUseError", "RunLock", "lock_run_folders", "release_all"]

LOCK_FILENAME = ".run.lock"
_logger = logging.getLogger(__name__)
_HELD: dict[str, RunLock] = {}  # the locks this process holds, by real path (taking one twice is a no-op)
_RELEASE_AT_EXIT: list[bool] = []  # whether release_all is registered with atexit (on the first lock, not at import)


def _shorten(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


class FolderInUseError(RuntimeError):
    """Another live run holds the folder's lock."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


class RunLock:
    """The lock file ``<folder>/.run.lock`` of one run.

    Args:
        folder: the folder to hold (created when missing, checked writable).
        what: what the folder is for, used in messages (``"ckpt_dir"``).
    """

    def __init__(self, folder: str | os.PathLike, what: str = "run folder") -> None:
        self.folder = os.fspath(folder)
        self.what = what
        self.path = os.path.join(self.folder, LOCK_FILENAME)
        self.held = False

    def _holder(self) -> dict:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "argv": sys.argv}
        me["started"] = datetime.datetime.now().isoformat(timespec="seconds")
        return me

    def _read(self) -> dict | None:
        """The holder recorded in the lock file; None when the file vanished or is unreadable (a torn write)."""
        try:
            with open(self.path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}

    def acquire(self) -> RunLock:
        """Create the lock file, or take over a stale one.

        Raises:
            FolderInUseError: naming the holder (pid, host, start time, command), when a live run holds the folder.
            PermissionError: naming the folder, when it cannot be created or written.
        """
        ensure_writable_dir(self.folder, self.what)
        content = json.dumps(self._holder(), indent=1).encode("utf-8")
        for _ in range(3):  # create, or find the holder dead and retry; bounded against a racing third run
            tmp = f"{self.path}.{os.getpid()}.new"
            with open(tmp, "wb") as f:
                f.write(content)
            try:
                os.link(tmp, self.path)  # atomic: fails when the lock exists, never leaves a half-written one
                break
            except FileExistsError:
                holder = self._read()
            finally:
                os.remove(tmp)
            if holder is None:
                continue
            if not self._stale(holder):
                raise FolderInUseError(self._in_use_message(holder))
            _logger.warning(f"{self.path}: taking over the lock of a run that is gone ({self._describe(holder)}).")
            os.replace(self.path, f"{self.path}.stale")  # replace, not remove: only one of two racing runs wins
            os.remove(f"{self.path}.stale")
        else:
            raise FolderInUseError(f"Could not take {self.path}: other runs keep creating it.")
        self.held = True
        removed = remove_stale_temporaries(self.folder)
        if removed:
            _logger.warning(f"Removed {len(removed)} temporary file(s) of a killed write in {self.folder}: {removed}")
        return self

    def _stale(self, holder: dict) -> bool:
        """A lock is stale when its process is gone: only decidable for a holder on this host."""
        if not holder:  # unreadable: a holder killed while writing it (os.link makes that all but impossible)
            return True
        if holder.get("host") != socket.gethostname():
            return False
        return not _pid_alive(int(holder.get("pid", -1)))

    @staticmethod
    def _describe(holder: dict) -> str:
        return (
            f"pid {holder.get('pid')} on host {holder.get('host')}, started {holder.get('started')}, "
            f"command {_shorten(' '.join(map(str, holder.get('argv', []))))!r}"
        )

    def _in_use_message(self, holder: dict) -> str:
        other_host = holder.get("host") != socket.gethostname()
        hint = (
            f"if that run is gone (it ran on another host, so this one cannot tell), delete {self.path}"
            if other_host
            else "wait for it to end or stop it"
        )
        return (
            f"The {self.what} {self.folder} is in use by another run ({self._describe(holder)}); expected a "
            f"folder no other run writes to: {hint}, or choose another {self.what}."
        )

    def release(self) -> None:
        """Remove the lock file, if this run still holds it."""
        if not self.held:
            return
        self.held = False
        holder = self._read()
        if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
            os.remove(self.path)


def lock_run_folders(**folders: str | os.PathLike | None) -> list[RunLock]:
    """Hold the lock of every given folder until this process ends (rank 0 only under ``torchrun``).

    Taking a folder this process already holds is a no-op, so the bundle's set-up and its checkpointer may both
    ask. Example: ``lock_run_folders(ckpt_dir="models", output_dir="outputs")``.

    Args:
        folders: name (used in messages) -> folder; None entries are skipped.

    Returns:
        the locks held for these folders.
    """
    if int(os.environ.get("RANK", "0")) != 0:  # the other ranks of a distributed run share rank 0's folders
        return []
    if not _RELEASE_AT_EXIT:  # importing this module changes nothing process-wide; the first lock registers this
        atexit.register(release_all)
        _RELEASE_AT_EXIT.append(True)
    locks = []
    for what, folder in folders.items():
        if folder is None:
            continue
        key = os.path.realpath(os.fspath(folder))
        if key not in _HELD:
            _HELD[key] = RunLock(folder, what).acquire()
        locks.append(_HELD[key])
    return locks


def release_all() -> None:
    """Release every lock this process holds (run at exit once a lock was taken; tests call it between in-process
    runs)."""
    while _HELD:
        _HELD.popitem()[1].release()
