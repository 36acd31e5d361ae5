"""The example protocols shipped in ``examples/protocols/`` (used by the demo and the docs)."""

from pathlib import Path

CHRONIC_PAIN_JITAI = "chronic_pain_jitai.yaml"
MINIMAL = "minimal.yaml"


def examples_dir() -> Path:
    # Beside the package in a checkout or an editable install; the working directory in
    # the container image (which copies examples/ next to app/).
    beside_package = Path(__file__).resolve().parents[2] / "examples" / "protocols"
    if beside_package.is_dir():
        return beside_package
    return Path.cwd() / "examples" / "protocols"


def example_text(name: str) -> str:
    return (examples_dir() / name).read_text(encoding="utf-8")
