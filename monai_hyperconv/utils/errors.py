"""What a user sees last when a run fails: the root cause (which names the file and what was expected), exit 1.

``python -m monai.bundle run`` re-raises an error of a config expression wrapped in its own ``RuntimeError``, so
the last line of the traceback is MONAI's (``set '_mode_=debug' to enter the debugging mode``, or the echoed
expression), not the message that says what is wrong. :func:`install_excepthook` keeps Python's traceback and
ends it with one line, ``monai_hyperconv error: <type>: <message>`` of the innermost exception of the chain. It
changes the process, so importing the package does not call it: the first entry of every bundle config's
``initialize`` list does (``$monai_hyperconv.utils.install_excepthook()``), and so does
``python -m monai_hyperconv.analysis``.

It also fixes why such failures often ended in ``terminate called without an active exception`` (exit 134): a
``ThreadPool`` that fails (MONAI's ``CacheDataset`` caches with one) is terminated without joining its worker
threads, which are daemon threads still holding tensors of the volumes they were preprocessing. At interpreter
shutdown such a thread wakes, drops a tensor, and torch's destructor takes the GIL from a finalizing interpreter:
Python ends the thread with ``pthread_exit``, whose unwinding through a C++ ``noexcept`` destructor calls
``std::terminate``. The hook therefore waits for those workers to finish their item before the interpreter shuts
down, and exits at once (status 1, streams flushed) if one does not end within ``thread_timeout`` seconds.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing.dummy
import os
import sys
import threading
import time

__all__ = ["install_excepthook", "join_pool_threads", "root_cause", "summary_line"]

PREFIX = "monai_hyperconv error"


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling, outermost first."""
    chain, seen = [], set()
    while exc is not None and id(exc) not in seen:
        chain.append(exc)
        seen.add(id(exc))
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return chain


def _raised_here(exc: BaseException) -> bool:
    """Whether this package raised ``exc`` (its messages name the file and what was expected)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and f"{os.sep}{__package__.split('.')[0]}{os.sep}" in tb.tb_frame.f_code.co_filename


def root_cause(exc: BaseException) -> BaseException:
    """The exception that says what is wrong: the innermost one this package raised (it wraps a library's error
    with the file and what was expected), else the innermost of the chain."""
    chain = _chain(exc)
    ours = [e for e in chain if _raised_here(e)]
    return ours[-1] if ours else chain[-1]


def summary_line(exc: BaseException) -> str:
    """``monai_hyperconv error: <type>: <message>`` of the root cause, on one line."""
    cause = root_cause(exc)
    message = " ".join(str(cause).split()) or "(no message)"
    return f"{PREFIX}: {type(cause).__name__}: {message}"


def join_pool_threads(timeout: float = 60.0) -> bool:
    """Wait up to ``timeout`` seconds for the worker threads of ``multiprocessing`` thread pools to end.

    Returns:
        True when none is left running.
    """
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if isinstance(thread, multiprocessing.dummy.DummyProcess) and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
    return not any(isinstance(t, multiprocessing.dummy.DummyProcess) and t.is_alive() for t in threading.enumerate())


def _exit_now(status: int) -> None:
    """Leave without interpreter shutdown (where a stray thread would abort the process), streams flushed."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed stream: nothing left to flush
            stream.flush()
    os._exit(status)


def install_excepthook(thread_timeout: float = 60.0) -> None:
    """End uncaught errors with :func:`summary_line`, and exit with status 1 instead of an abort.

    Installed once; a hook set by someone else (an IDE, IPython) is kept and called first.

    Args:
        thread_timeout: seconds to wait for thread-pool workers still preprocessing data.
    """
    previous = sys.excepthook
    if getattr(previous, "monai_hyperconv_summary", False):
        return

    def hook(exc_type, exc, tb):
        previous(exc_type, exc, tb)
        if isinstance(exc, KeyboardInterrupt) or exc is None:
            return
        print(summary_line(exc), file=sys.stderr, flush=True)
        if not join_pool_threads(thread_timeout):
            _exit_now(1)

    hook.monai_hyperconv_summary = True  # marks our hook, so installing it twice wraps nothing
    sys.excepthook = hook
