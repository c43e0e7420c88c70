"""The conventions a Python user expects: ``python -m moeplan``, a LICENSE, one version, honest dependency floors
that CI tests (``.ci/lowest.txt``), the README's test command being CI's, and Python 3.10 as declared."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from moeplan.version import __version__

ROOT = Path(__file__).resolve().parent.parent
# The official text, https://www.apache.org/licenses/LICENSE-2.0.txt
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


def _pyproject() -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python 3.10: mypy (the test extra) brings tomli
        tomllib = pytest.importorskip("tomli")
    data: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return data


def _moeplan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "moeplan", *args], capture_output=True, text=True, timeout=60)


# -- python -m moeplan ------------------------------------------------------------------------------------------


def test_python_dash_m_moeplan_is_the_script() -> None:
    assert _pyproject()["project"]["scripts"]["moeplan"] == "moeplan.cli:main"
    main = (ROOT / "moeplan" / "__main__.py").read_text(encoding="utf-8")
    assert "from moeplan.cli import main" in main
    done = _moeplan("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"moeplan {__version__}", done.stderr


def test_python_dash_m_moeplan_runs_a_command_and_names_itself() -> None:
    done = _moeplan("estimate", "mixtral-8x7b", "--gpu", "h100", "--json")
    assert done.returncode == 0, done.stderr
    assert '"total"' in done.stdout
    done = _moeplan("estimate")  # a usage error: exit 2, and the hint names the way it was run
    assert done.returncode == 2 and "python -m moeplan estimate --help" in done.stderr


# -- LICENSE ----------------------------------------------------------------------------------------------------


def test_license_is_the_apache_2_text() -> None:
    text = (ROOT / "LICENSE").read_bytes()
    assert hashlib.sha256(text).hexdigest() == APACHE_2_SHA256
    lines = [line.strip() for line in text.decode().splitlines() if line.strip()]
    assert lines[:2] == ["Apache License", "Version 2.0, January 2004"]
    project = _pyproject()["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]


# -- one version ------------------------------------------------------------------------------------------------


def test_the_version_is_written_only_in_version_py() -> None:
    project = _pyproject()
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    assert project["tool"]["hatch"]["version"]["path"] == "moeplan/version.py"
    assert re.fullmatch(r"\d+\.\d+\.\d+([a-z]+\d+)?", __version__)
    literal = re.compile(rf"(?<![\w.]){re.escape(__version__)}(?![\w.])")
    skip = {ROOT / "moeplan" / "version.py", ROOT / "CHANGELOG.md"}  # the changelog's headings are history
    places = [ROOT / "pyproject.toml", ROOT / "README.md", *(ROOT / ".ci").iterdir()]
    for folder in ("moeplan", "docs", "benchmarks", "model_specs", "tests"):
        places += [p for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".md", ".yaml", ".json", ".toml"}]
    written = [
        f"{p.relative_to(ROOT)}: {line.strip()}"
        for p in places
        if p.is_file() and p not in skip and "data" not in p.relative_to(ROOT).parts
        for line in p.read_text(encoding="utf-8", errors="replace").splitlines()
        if literal.search(line) and re.search(r"moeplan|version", line, re.I)  # not another package's pin
    ]
    assert written == [], f"the version is written outside moeplan/version.py: {written}"


def test_every_version_shown_is_version_py() -> None:
    import moeplan

    assert moeplan.__version__ == __version__
    from typer.testing import CliRunner

    from moeplan.cli import app

    assert CliRunner().invoke(app, ["--version"]).stdout.strip() == f"moeplan {__version__}"


# -- dependency floors and the lowest-dependency run ------------------------------------------------------------


def _floors() -> dict[str, str]:
    """Each direct dependency (runtime and the test extra) and the version its ``>=`` names."""
    project = _pyproject()["project"]
    floors: dict[str, str] = {}
    for text in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        req = Requirement(text)
        lows = [s.version for s in req.specifier if s.operator == ">="]
        assert len(lows) == 1, f"{text}: every direct dependency declares one floor (>=)"
        floors[canonicalize_name(req.name)] = lows[0]
    return floors


def _lowest_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / ".ci" / "lowest.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{line}: .ci/lowest.txt pins exact versions"
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_lowest_constraints_pin_every_direct_dependency_at_its_floor() -> None:
    floors, pins = _floors(), _lowest_pins()
    pinned = {name: Version(pins[name]) if name in pins else None for name in floors}
    assert pinned == {name: Version(floor) for name, floor in floors.items()}  # 1.0 == 1.0.0
    assert "torch" not in pins and "transformers" not in pins  # the lowest run goes without the reference group


def test_the_lowest_python_is_the_declared_one() -> None:
    project = _pyproject()
    assert project["project"]["requires-python"] == ">=3.10"
    assert project["tool"]["mypy"]["python_version"] == "3.10" and project["tool"]["ruff"]["target-version"] == "py310"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python3.10" in ci and "-c .ci/lowest.txt" in ci and ".venv-lowest" in ci
    assert ".venv-lowest/" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()


def test_exact_pins_live_in_the_reference_group_not_the_extras() -> None:
    data = _pyproject()
    reference = [Requirement(r) for r in data["dependency-groups"]["reference"]]
    assert {canonicalize_name(r.name) for r in reference} == {"torch", "transformers"}
    assert all(str(r.specifier).startswith("==") for r in reference)
    for extra, requirements in data["project"]["optional-dependencies"].items():
        assert not any("==" in r for r in requirements), f"an exact pin in the {extra} extra"


def test_calibrate_extra_brings_numpy() -> None:
    calibrate = {
        canonicalize_name(Requirement(r).name) for r in _pyproject()["project"]["optional-dependencies"]["calibrate"]
    }
    assert calibrate == {"torch", "numpy"}  # torch without numpy warns "Failed to initialize NumPy" on import


# -- the README's commands are CI's ----------------------------------------------------------------------------


def _readme_commands() -> list[str]:
    head = (ROOT / "README.md").read_text(encoding="utf-8").split("---", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", head, re.S)]


def test_readme_test_command_is_the_line_ci_runs() -> None:
    run_job, test_job = _readme_commands()
    assert "pip install -q . " in run_job and "moeplan estimate" in run_job and "\n" not in run_job
    assert "\n" not in test_job and "--group reference" in test_job and test_job.endswith(".venv/bin/pytest -q")
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert test_job in ci_lines


def test_readme_has_the_cpu_calibration_recipe() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Calibration on a CPU-only machine", 1)[1].split("\n## ", 1)[0]
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in section
    assert "pip install 'moeplan[calibrate]'" in section


# -- Python 3.10 ------------------------------------------------------------------------------------------------


def test_profile_ages_read_a_utc_z_suffix_on_every_python() -> None:
    """``datetime.fromisoformat`` reads a trailing ``Z`` only from Python 3.11 on; profiles written by hand have one."""
    from moeplan.hardware.profiles import _age_days

    class Profile:
        created = "2025-06-01T00:00:00Z"

    now = dt.datetime(2025, 6, 3, tzinfo=dt.timezone.utc)
    assert _age_days(Profile(), now) == pytest.approx(2.0)  # type: ignore[arg-type]
    Profile.created = "2025-06-01T00:00:00"  # naive: taken as UTC
    assert _age_days(Profile(), now) == pytest.approx(2.0)  # type: ignore[arg-type]
