"""A non-editable install: the wheel built from the checkout, installed into a fresh venv,
runs citywatch in an empty folder outside the checkout.

The fresh venv gets the dependencies from the test's own venv through a ``.pth`` file
(nothing is downloaded) pointing at a folder of links to its site-packages, without
citywatch's editable install, so only the installed copy can be imported.

The full ``citywatch demo`` takes several minutes of CPU; this runs the smaller real
path the demo starts with: ``citywatch sample`` (short segments) and ``citywatch index``
of one camera on local Dask workers, all from the installed copy (with the session's
Prefect server, which runs no citywatch code).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SHARED_SITE = Path(sysconfig.get_paths()["purelib"])
NOT_SHIPPED = (".git", ".venv", "data", "build", "*.egg-info", "__pycache__", ".*_cache", ".citywatch")


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _dependencies_view(dest: Path) -> Path:
    """Links to everything in the shared site-packages except citywatch itself."""
    dest.mkdir()
    for entry in SHARED_SITE.iterdir():
        if entry.name.startswith(("__editable__", "citywatch")):
            continue
        (dest / entry.name).symlink_to(entry)
    return dest


class Installed:
    def __init__(self, root: Path) -> None:
        self.venv = root / "venv"
        self.python = self.venv / "bin" / "python"
        self.citywatch = self.venv / "bin" / "citywatch"
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PREFECT_API_URL", "PREFECT_HOME", "VIRTUAL_ENV")
            and not k.startswith("CITYWATCH_")
        }
        self.env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{os.defpath}"

    @property
    def site(self) -> Path:
        done = _run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            self.venv,
            self.env,
            60,
        )
        return Path(done.stdout.strip())


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("install")
    inst = Installed(root)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(inst.venv)], check=True, timeout=120)
    view = _dependencies_view(root / "dependencies")
    (inst.site / "_citywatch_test_dependencies.pth").write_text(f"{view}\n")
    src = root / "src"  # a copy: building in place would leave build/ and egg-info in the checkout
    shutil.copytree(REPO, src, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SHIPPED))
    pip = [str(inst.python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index"]
    done = _run([*pip, str(src)], root, inst.env, 600)
    assert done.returncode == 0, done.stdout + done.stderr
    return inst


def test_the_wheel_installs_one_citywatch_namespace(installed: Installed, tmp_path: Path) -> None:
    site = installed.site
    for package in ("flows", "tasks", "models"):
        assert (site / "citywatch" / package / "__init__.py").is_file(), package
        assert not (site / package).exists(), f"a top-level {package} package was installed"
    assert (site / "citywatch" / "models" / "weights" / "plate_rec.onnx").is_file()
    probe = (
        "import citywatch, citywatch.flows.index_footage as f, citywatch.models.plate_rec as m; "
        "print(citywatch.__file__); print(f.__file__); print(m.__file__)"
    )
    done = _run([str(installed.python), "-c", probe], tmp_path, installed.env, 120)
    assert done.returncode == 0, done.stderr
    for path in done.stdout.split():
        assert Path(path).is_relative_to(site), f"{path} is not the installed copy"
    version = _run([str(installed.citywatch), "--version"], tmp_path, installed.env, 120)
    assert version.returncode == 0 and version.stdout.strip() == "citywatch 0.1.0", version.stderr


def test_the_installed_cli_makes_and_indexes_a_sample(
    installed: Installed, prefect_api: str, tmp_path: Path
) -> None:
    work = tmp_path / "empty"
    work.mkdir()
    cli = [str(installed.citywatch), "--root", str(work / "data"), "--user", "demo-admin"]
    sample = _run(
        [*cli, "sample", "--segments-per-camera", "1", "--segment-seconds", "8"], work, installed.env, 900
    )
    assert sample.returncode == 0, sample.stderr
    footage = work / "data" / "footage"
    cameras = sorted(p.name for p in footage.iterdir())
    assert "cam-nathan-rd" in cameras
    for camera in cameras:  # one camera keeps the run short
        if camera != "cam-nathan-rd":
            shutil.rmtree(footage / camera)
    # the session's Prefect server (the flows run in the CLI's process and its Dask workers)
    env = {**installed.env, "PREFECT_API_URL": prefect_api}
    index = _run([*cli, "index", "--json"], work, env, 900)
    assert index.returncode == 0, index.stderr
    summary = json.loads(index.stdout[index.stdout.index("{") :])
    assert (summary["found"], summary["indexed"], summary["failed"]) == (1, 1, [])
