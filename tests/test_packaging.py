"""Package metadata that installs must honour: the MLflow tracking client and the optional UI on one release."""

from __future__ import annotations

import configparser
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

SETUP_CFG = Path(__file__).resolve().parents[1] / "setup.cfg"


def _requirements(text: str) -> dict[str, Requirement]:
    lines = [line.strip() for line in text.splitlines()]
    found = [Requirement(line) for line in lines if line and not line.startswith("#")]
    return {r.name: r for r in found}


@pytest.fixture(scope="module")
def mlflow_pins() -> tuple[Requirement, Requirement]:
    config = configparser.ConfigParser()
    config.read(SETUP_CFG)
    client = _requirements(config["options"]["install_requires"])["mlflow-skinny"]
    ui = _requirements(config["options.extras_require"]["mlflow-ui"])["mlflow"]
    return client, ui


def test_the_tracking_client_and_the_ui_are_pinned_to_one_release(mlflow_pins):
    client, ui = mlflow_pins
    assert client.specifier == ui.specifier, f"mlflow-skinny {client.specifier} and mlflow {ui.specifier} differ"
    installed = Version(metadata.version("mlflow-skinny"))
    major, minor = installed.major, installed.minor
    assert installed in client.specifier, f"the installed mlflow-skinny {installed} is outside {client.specifier}"
    # neither an older nor a newer release line may be chosen by `pip install .[mlflow-ui]` (the database schema
    # differs between them, and the UI refuses a store of another release)
    for other in (f"{major}.{minor - 1}.99" if minor else f"{major - 1}.99.99", f"{major}.{minor + 1}.0", f"{major + 1}.0.0"):
        assert Version(other) not in client.specifier, f"{client} lets pip choose MLflow {other}"


def test_an_installed_ui_is_the_clients_release(mlflow_pins):
    try:
        ui_version = Version(metadata.version("mlflow"))
    except metadata.PackageNotFoundError:
        pytest.skip("the mlflow-ui extra is not installed")
    assert ui_version.release[:2] == Version(metadata.version("mlflow-skinny")).release[:2]
