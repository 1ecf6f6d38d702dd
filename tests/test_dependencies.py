"""Every third-party package the shipped code imports is a declared, exactly pinned
requirement in pyproject.toml (imports are read with ``ast``, not by importing)."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHIPPED = ("citywatch", "flows", "tasks", "models")  # flows/tasks/models ship as citywatch.*
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>[^\s,;<>=!~*]+)$")

# Imported, deliberately not declared: the reason is the answer to "why not?".
UNDECLARED = {
    "insightface": "optional backend, installed by infra/install.sh with --no-deps (its deps pull OpenCV 5)",
    "torch": "only models/training (a developer's tool; PyTorch is not a citywatch dependency)",
}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports(path: Path) -> dict[str, bool]:
    """Top-level module names imported by ``path`` -> whether one import is at module level."""
    tree = ast.parse(path.read_text(), filename=str(path))
    module_level = {id(node) for node in tree.body}
    for node in tree.body:  # imports under `if TYPE_CHECKING:` or try: at the top count too
        if isinstance(node, ast.If | ast.Try):
            module_level |= {id(child) for child in ast.walk(node)}
    found: dict[str, bool] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            found[top] = found.get(top, False) or id(node) in module_level
    return found


def _third_party_imports() -> dict[str, list[str]]:
    """Third-party top-level module -> the shipped files importing it."""
    stdlib = set(sys.stdlib_module_names) | {
        "__future__",
        "_typeshed",
    }  # _typeshed: type stubs, only under TYPE_CHECKING
    out: dict[str, list[str]] = {}
    for package in SHIPPED:
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO)
            if package == "citywatch" and relative.parts[1] in ("flows", "tasks", "models"):
                continue  # symlinks to the top-level folders, read once there
            for module in _imports(path):
                if module not in stdlib and module not in SHIPPED:
                    out.setdefault(module, []).append(str(relative))
    return out


def _requirements() -> dict[str, list[str]]:
    """Requirement strings by group: "runtime" and each extra."""
    groups = {"runtime": list(PROJECT["dependencies"])}
    groups.update(PROJECT.get("optional-dependencies", {}))
    return groups


def _declared(groups: list[str]) -> set[str]:
    """Normalised distribution names required by ``groups``."""
    return {
        _normal(re.split(r"[\[=<>!~;\s]", requirement, maxsplit=1)[0])
        for group in groups
        for requirement in _requirements()[group]
    }


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())


@functools.cache
def _distributions(module: str) -> set[str]:
    """The installed distributions that provide top-level ``module`` (from top_level.txt,
    else from the files they installed: dlib-bin's top_level.txt names only its .so)."""
    found = set(_packages_distributions().get(module, []))
    if not found:
        for dist in importlib.metadata.distributions():
            if any(f.parts[0] in (module, f"{module}.py") for f in dist.files or []):
                found.add(dist.metadata["Name"])
    return {_normal(d) for d in found}


IMPORTS = _third_party_imports()


def test_the_scan_finds_the_known_imports() -> None:
    for module in ("numpy", "lancedb", "prefect", "scipy", "botocore", "cv2", "yaml"):
        assert module in IMPORTS, module
    assert "citywatch" not in IMPORTS and "os" not in IMPORTS


@pytest.mark.parametrize("group", list(_requirements()))
def test_every_requirement_is_an_exact_pin(group: str) -> None:
    for requirement in _requirements()[group]:
        assert _PIN.match(requirement), f"[{group}] {requirement!r} is not an exact pin (name==version)"


@pytest.mark.parametrize("module", sorted(IMPORTS))
def test_every_imported_package_is_declared(module: str) -> None:
    if module in UNDECLARED:
        return
    dists = _distributions(module)
    assert dists, f"{module} (imported by {IMPORTS[module][:3]}) is not installed: declare and install it"
    runtime = _declared(["runtime"])
    everywhere = _declared([g for g in _requirements() if g != "dev"])
    files = IMPORTS[module]
    at_module_level = any(_imports(REPO / f).get(module) for f in files)
    where = runtime if at_module_level else everywhere
    assert dists & where, (
        f"{module} (distribution {sorted(dists)}, imported by {files[:3]}) is not a declared "
        + ("runtime dependency" if at_module_level else "runtime dependency or non-dev extra")
    )


def test_runtime_pins_are_what_is_installed() -> None:
    """The venv the tests run in is the one pyproject.toml describes."""
    for requirement in PROJECT["dependencies"]:
        match = _PIN.match(requirement)
        assert match, requirement
        assert importlib.metadata.version(match["name"]) == match["version"], requirement


def test_what_citywatch_up_runs_is_a_runtime_dependency() -> None:
    """`citywatch up` starts these commands (citywatch/stack/up.py): they come with the install."""
    source = (REPO / "citywatch" / "stack" / "up.py").read_text()
    commands = set(re.findall(r'executable\("([a-z-]+)"\)', source))
    assert commands == {"dask", "localbucket", "prefect"}
    runtime = _declared(["runtime"])
    for command, dist in (("dask", "dask"), ("localbucket", "localbucket"), ("prefect", "prefect")):
        assert dist in runtime, (
            f"{command} is started by `citywatch up` but {dist} is not a runtime dependency"
        )
