"""Every analyst notebook runs top to bottom on freshly indexed sample data.

Each notebook's ``parameters`` cell is replaced (storage root, analyst user) and the
notebook is run by nbclient in a kernel of this interpreter; an error in any cell
fails the test. Notebooks are stored without outputs.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from citywatch.governance.auth import write_demo_users
from citywatch.settings import Settings
from citywatch.storage import Storage
from tests.test_analytics import write_patrol_root

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = ["01_sightings_overview", "02_plates", "03_case_timeline", "04_pipeline_health"]
KERNEL = "citywatch-tests"
CELL_TIMEOUT_S = 300


def kernel_manager(tmp: Path) -> KernelManager:
    """A kernel of *this* interpreter (the venv), whatever kernels the machine has installed."""
    spec_dir = tmp / "kernels" / KERNEL
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "citywatch tests",
                "language": "python",
            }
        )
    )
    specs = KernelSpecManager(kernel_dirs=[str(tmp / "kernels")], ensure_native_kernel=False)
    return KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def run_notebook(name: str, workdir: Path, **params: object) -> nbformat.NotebookNode:
    """Run ``name`` with its parameters cell extended by ``params`` (the notebook's own variable names)."""
    book = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    tagged = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name} needs exactly one cell tagged 'parameters'"
    tagged[0].source += "\n# injected by the tests\n" + "\n".join(
        f"{key} = {value!r}" for key, value in params.items()
    )
    client = NotebookClient(
        book,
        timeout=CELL_TIMEOUT_S,
        km=kernel_manager(workdir),
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()
    return book


def text_output(book: nbformat.NotebookNode) -> str:
    parts = []
    for cell in book.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") or out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def images(book: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for cell in book.cells for out in cell.get("outputs", []))


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_are_stored_without_outputs(name: str) -> None:
    book = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(book)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name} has outputs"


@pytest.fixture(scope="module")
def analyst_root(indexed, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: ANN001
    """A copy of the indexed sample (the notebooks audit and export into it)."""
    root = tmp_path_factory.mktemp("notebooks") / "data"
    shutil.copytree(indexed.root, root)
    write_demo_users(Storage(Settings(storage__root=str(root))))  # keeps an existing file
    return root


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_on_the_indexed_sample(name: str, analyst_root: Path, tmp_path: Path) -> None:
    book = run_notebook(name, tmp_path, storage_root=str(analyst_root))
    outputs = text_output(book)
    assert "embedding" not in outputs
    assert (
        images(book)
        >= {"01_sightings_overview": 2, "02_plates": 1, "03_case_timeline": 2, "04_pipeline_health": 2}[name]
    )
    if name == "02_plates":  # the sample's cars are read: the frequency chart is drawn
        assert "no plates indexed" not in outputs
    if name == "03_case_timeline":
        assert (tmp_path / "DEMO-SAMPLE-1-sightings.json").is_file()
        assert "cam-" in outputs and "thumb_uri" in outputs  # the stops name thumbnails; none is shown


def test_plates_notebook_with_a_patrol_car(tmp_path: Path) -> None:
    """The sample has no patrol car yet: made-up plates and GPS sidecars (tests/test_analytics)."""
    write_patrol_root(tmp_path / "data")
    book = run_notebook("02_plates", tmp_path, storage_root=str(tmp_path / "data"))
    outputs = text_output(book)
    assert "PC1234" in outputs and "no plates indexed" not in outputs
    assert "no mobile camera" not in outputs
    assert images(book) >= 2  # frequent plates, the car's route


def test_plates_notebook_reads_only_the_analyst_dataset(tmp_path: Path) -> None:
    """As deployed: the analysts' copy of the dataset, and no storage root at all."""
    write_patrol_root(tmp_path / "data")
    shared = tmp_path / "analyst-share"
    shutil.copytree(tmp_path / "data" / "analytics", shared)
    book = run_notebook(
        "02_plates", tmp_path, storage_root=str(tmp_path / "no-root"), analytics_root=str(shared), user="ana"
    )
    assert "PC1234" in text_output(book) and images(book) >= 2
    assert not (tmp_path / "no-root").exists()


def test_plates_notebook_without_plates(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_demo_users(Storage(Settings(storage__root=str(root))))
    book = run_notebook("02_plates", tmp_path, storage_root=str(root))
    assert "no plates indexed" in text_output(book)
