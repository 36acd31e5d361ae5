"""Zip bundles that background jobs (exports, simulations) leave for download."""

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def zip_bundle(directory: Path, file_name: str) -> Iterator[zipfile.ZipFile]:
    """A zip written under a temporary name and renamed when complete, so a download never
    sees a half-written bundle."""
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / f"{file_name}.partial"
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        yield bundle
    partial.rename(directory / file_name)
