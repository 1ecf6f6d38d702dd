"""Client mode: identity comes from the API token, so a command-line ``--user`` is refused."""

from __future__ import annotations

import pytest

from citywatch.cli.main import main


@pytest.mark.parametrize(
    "argv",
    [
        ["watchlist", "list"],
        ["watchlist", "approve", "W-1", "--why", "case file checked by a second person"],
        ["search", "plate", "AB12*", "--case", "C-1", "--why", "stolen car report"],
        ["alerts", "list"],
    ],
)
def test_user_flag_is_refused_in_client_mode(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # port 9 (discard) has no service: a refusal that came from a connection attempt would be exit 1
    monkeypatch.setenv("CITYWATCH_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CITYWATCH_API_TOKEN", "cwt_" + "a" * 16 + "_" + "b" * 43)
    assert main(["--user", "demo-supervisor", *argv]) == 3
    err = capsys.readouterr().err
    assert "--user 'demo-supervisor' is refused in client mode" in err
    assert "API token" in err and "cannot reach" not in err


def test_without_user_flag_the_command_goes_to_the_service(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYWATCH_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CITYWATCH_API_TOKEN", "cwt_" + "a" * 16 + "_" + "b" * 43)
    assert main(["watchlist", "list"]) == 1  # it tried the (absent) service
    assert "cannot reach the citywatch service at http://127.0.0.1:9" in capsys.readouterr().err
