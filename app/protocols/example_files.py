"""The example protocols shipped in ``examples/protocols/``, and the behaviour model for
simulating the chronic-pain one in ``examples/simulation/`` (used by the demo and the
docs)."""

from pathlib import Path

CHRONIC_PAIN_JITAI = "chronic_pain_jitai.yaml"
MINIMAL = "minimal.yaml"
CHRONIC_PAIN_ADAPTIVE = "chronic_pain_adaptive.yaml"
CHRONIC_PAIN_BEHAVIOUR = "chronic_pain_behaviour.yaml"


def examples_dir(kind: str = "protocols") -> Path:
    # Beside the package in a checkout or an editable install; the working directory in
    # the container image (which copies examples/ next to app/).
    beside_package = Path(__file__).resolve().parents[2] / "examples" / kind
    if beside_package.is_dir():
        return beside_package
    return Path.cwd() / "examples" / kind


def example_text(name: str) -> str:
    return (examples_dir() / name).read_text(encoding="utf-8")


def example_behaviour_text(name: str = CHRONIC_PAIN_BEHAVIOUR) -> str:
    return (examples_dir("simulation") / name).read_text(encoding="utf-8")
