"""The Prefect UI citywatch points people at can reach its server's API (issue 13, item 11).

The UI reads ``<server>/ui-settings`` to learn where the API is. A server on a port
other than 4200 said ``http://127.0.0.1:4200/api`` there, so the UI showed no runs.
The browser check opens the UI ``citywatch index`` prints, in chromium, and finds the
run it just made in the runs list.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from pathlib import Path

import pytest
import yaml

from citywatch.cli.main import main
from citywatch.settings import Settings
from citywatch.stack.down import stop_stack
from citywatch.stack.up import StackOptions, _Starter
from tests.browser import page

REPO = Path(__file__).resolve().parents[1]


def ui_api_url(api_url: str) -> str:
    with urllib.request.urlopen(f"{api_url.removesuffix('/api')}/ui-settings", timeout=10) as resp:
        return str(json.loads(resp.read())["api_url"])


@pytest.mark.slow
def test_the_auto_started_server_tells_the_ui_its_real_api_address(prefect_api: str) -> None:
    # prefect_api is started by start_prefect_server, as ensure_prefect_server does for the CLI
    assert not prefect_api.endswith(":4200/api")
    assert ui_api_url(prefect_api) == prefect_api


@pytest.mark.slow
def test_up_starts_a_server_whose_ui_knows_its_api_and_down_stops_it(tmp_path: Path) -> None:
    settings = Settings(storage__root=str(tmp_path / "data"), storage__state_dir=str(tmp_path / "state"))
    starter = _Starter(settings, StackOptions(project=REPO, prefect_port=0))
    api = starter.prefect()  # what `citywatch up` starts first
    try:
        assert ui_api_url(api) == api
    finally:
        assert stop_stack(settings).stopped == ["prefect-server"]


@pytest.mark.slow
def test_the_printed_prefect_ui_lists_the_index_flow_run(
    prefect_api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    from citywatch.governance.auth import write_demo_users
    from citywatch.storage import Storage

    root = tmp_path / "data"
    (root / "footage").mkdir(parents=True)
    write_demo_users(Storage(Settings(storage__root=str(root))))
    monkeypatch.setenv("CITYWATCH_STORAGE__STATE_DIR", str(tmp_path / "state"))
    capsys.readouterr()
    assert main(["--root", str(root), "--user", "demo-admin", "index"]) == 0
    printed = re.findall(r"^Prefect UI: (http://\S+)$", capsys.readouterr().out, re.M)
    assert printed == [prefect_api.removesuffix("/api")]
    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["index-footage"])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
    shots = Path(os.environ.get("CITYWATCH_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with page() as ui:
        ui.goto(printed[0], wait_until="networkidle", timeout=120_000)
        ui.get_by_role("link", name="Runs").first.click()  # as a person would, from the dashboard
        listed = ui.get_by_text(run.name, exact=True).first
        listed.wait_for(state="visible", timeout=120_000)
        listed.scroll_into_view_if_needed()
        ui.get_by_text("index-footage").first.wait_for(state="visible", timeout=30_000)
        ui.screenshot(path=str(shots / "prefect-ui-runs.png"))
        assert ui.get_by_text("Can't connect to Server API").count() == 0
        assert ui.url.startswith(printed[0])


def _compose_default(value: str) -> str:
    """``${NAME:-default}`` as docker compose resolves it with NAME unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_the_compose_prefect_server_tells_the_ui_the_published_api_address() -> None:
    compose = yaml.safe_load((REPO / "infra" / "docker-compose.yml").read_text())
    server = compose["services"]["prefect-server"]
    host_port = server["ports"][0].split(":")[0]
    env = server["environment"]
    assert _compose_default(env["PREFECT_UI_API_URL"]) == f"http://localhost:{host_port}/api"
    assert _compose_default(env["PREFECT_UI_URL"]) == f"http://localhost:{host_port}"


def test_no_k8s_manifest_starts_a_prefect_server_without_the_ui_api_url() -> None:
    """infra/k8s uses an external server (the Helm chart, see infra/README.md); should a
    manifest ever start one, it must say where the UI finds the API."""
    for path in sorted((REPO / "infra" / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            spec = ((doc or {}).get("spec") or {}).get("template", {}).get("spec", {})
            for container in spec.get("containers", []) + spec.get("initContainers", []):
                words = " ".join(map(str, container.get("command", []) + container.get("args", [])))
                if re.search(r"prefect\s+server\s+start", words):
                    names = {e["name"] for e in container.get("env", [])}
                    assert "PREFECT_UI_API_URL" in names, f"{path.name}: {container['name']}"
