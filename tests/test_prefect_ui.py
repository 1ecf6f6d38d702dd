"""The Prefect UI citywatch points people at can reach its server's API (issue 13, item 11).

The UI reads ``<server>/ui-settings`` to learn where the API is. A server on a port
other than 4200 said ``http://127.0.0.1:4200/api`` there, so the UI showed no runs.
The browser check (open the printed UI, see the index flow run) waits for the
console's browser tests.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest
import yaml

from citywatch.settings import Settings
from citywatch.stack.down import stop_stack
from citywatch.stack.up import StackOptions, _Starter

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
