"""Library versions in encoder fingerprints: a release that can change the vectors is a
new cache key; one that cannot (a patch release) is not."""

from __future__ import annotations

from importlib import metadata


def package_version(distribution: str, parts: int = 1) -> str:
    """The first ``parts`` numbers of the installed version ("5" for transformers 5.23.0
    with parts=1), or "missing" when the distribution is not installed."""
    try:
        return ".".join(metadata.version(distribution).split(".")[:parts])
    except metadata.PackageNotFoundError:
        return "missing"
