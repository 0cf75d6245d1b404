"""Helpers shared by test modules (importable because ``pythonpath`` in pyproject.toml adds ``tests/``)."""


def exception_chain_text(exc: BaseException | None) -> str:
    """Messages of an exception and of every exception it was raised from (MONAI wraps transform errors)."""
    parts = []
    while exc is not None:
        parts.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return " | ".join(parts)
