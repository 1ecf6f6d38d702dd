"""The sectioned settings: variables, refused names, copies, the README table, one grammar.

Holds old flat names on purpose (settings-rewrite: skip).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from citywatch.cli.main import main
from citywatch.plates import DEFAULT_PLATE_GRAMMAR
from citywatch.settings import PlatesSettings, Settings, TrackingSettings, variable_names
from citywatch.settings.reference import readme_table, table
from citywatch.tasks.index.plates import SegmentPlates

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(variable_names()):
        monkeypatch.delenv(name, raising=False)


def test_a_section_field_is_set_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYWATCH_FACES__MATCH_THRESHOLD", "0.42")
    monkeypatch.setenv("CITYWATCH_STORAGE__ROOT", "s3://bucket/city/")
    monkeypatch.setenv("CITYWATCH_ALERTS__WEBHOOK_ALLOWED_HOSTS", '["Hooks.Example.org"]')
    settings = Settings(faces__min_px=40)
    assert settings.faces.match_threshold == 0.42
    assert settings.faces.min_px == 40  # a keyword beside the environment's value
    assert settings.storage.root == "s3://bucket/city"
    assert settings.alerts.webhook_allowed_hosts == ["hooks.example.org"]


def test_a_keyword_wins_over_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYWATCH_DASK__WORKERS", "4")
    monkeypatch.setenv("CITYWATCH_DASK__THREADS_PER_WORKER", "3")
    dask = Settings(dask__workers=1).dask
    assert (dask.workers, dask.threads_per_worker) == (1, 3)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("CITYWATCH_FACE_MIN_PX", "FACE_MIN_PX is an old setting name: it is now CITYWATCH_FACES__MIN_PX"),
        ("CITYWATCH_STORAGE_ROOT", "it is now CITYWATCH_STORAGE__ROOT"),
        ("CITYWATCH_PLATE_ALERT_MAX_DISTANCE", "it is now CITYWATCH_SWEEP__PLATE_MAX_DISTANCE"),
        ("CITYWATCH_FACES__MIN_PIX", "CITYWATCH_FACES__MIN_PIX is not a citywatch setting (did you mean "),
        ("CITYWATCH_NONSENSE", "CITYWATCH_NONSENSE is not a citywatch setting (see the settings table"),
    ],
)
def test_an_unknown_variable_is_refused_with_the_name_meant(
    name: str, words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, "1")
    with pytest.raises(ValidationError, match=words.replace("(", r"\(")):
        Settings()


def test_the_cli_names_an_unknown_variable_and_its_new_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYWATCH_DASK_WORKERS", "2")
    assert main(["down"]) == 2
    err = capsys.readouterr().err
    assert "CITYWATCH_DASK_WORKERS is an old setting name: it is now CITYWATCH_DASK__WORKERS" in err, err


def test_variables_that_are_not_settings_are_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYWATCH_API_TOKEN", "cwt_x")
    monkeypatch.setenv("CITYWATCH_WEBHOOK_SECRETS", "{}")
    assert Settings().user is None


def test_an_old_flat_keyword_is_refused_with_its_new_name() -> None:
    words = r"'storage_root' is now storage.root \(keyword storage__root=\)"
    with pytest.raises(ValidationError, match=words):
        Settings(storage_root="/data")


def test_updated_changes_only_what_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    base = Settings(storage__root="/data", faces__min_px=40, user="ann")
    monkeypatch.setenv("CITYWATCH_FACES__MIN_PX", "99")  # not read again
    copy = base.updated(plates__enabled=False, user="bob")
    assert (copy.plates.enabled, copy.user) == (False, "bob")
    assert (copy.faces.min_px, copy.storage.root) == (40, "/data")
    assert base.plates.enabled is True and base.user == "ann"
    with pytest.raises(ValidationError, match="index_lease_s"):
        base.updated(index__lease_s=5)  # validators run on the copy


def test_secrets_stay_secret() -> None:
    settings = Settings(s3__secret_access_key="hunter2", auth__session_secret="s3cret")
    assert "hunter2" not in repr(settings) and "s3cret" not in str(settings.model_dump())


def test_the_readme_table_is_the_generated_one() -> None:
    """`python -m citywatch.settings.reference --write README.md` after changing a setting."""
    readme = (REPO / "README.md").read_text()
    assert readme_table(readme) == table()
    for name in variable_names():
        if "__" in name:
            assert f"`{name}`" in readme, name


def test_one_plate_grammar_for_index_search_and_watchlist() -> None:
    plates = Settings().plates
    assert plates.plate_grammar() == DEFAULT_PLATE_GRAMMAR  # the settings' default is the one definition
    assert not DEFAULT_PLATE_GRAMMAR.matches("Q")  # personalised marks: 2-8 characters
    assert DEFAULT_PLATE_GRAMMAR.matches("QX") and DEFAULT_PLATE_GRAMMAR.matches("TAXIKING")
    mine = PlatesSettings(format="custom", grammar=("^[A-Z]{2}[0-9]{4}$",), grammar_fix_targets=1)
    segment = SegmentPlates(reader=None, plates=mine, tracking=TrackingSettings())
    assert segment.grammar == mine.plate_grammar() and not segment.grammar.matches("BATMAN")
    # search and the watchlist parse queries with the settings' grammar, never a constant of their own
    for module in ("flows/search.py", "citywatch/governance/watchlist.py", "tasks/index/plates.py"):
        source = (REPO / module).read_text()
        assert "DEFAULT_PLATE_GRAMMAR" not in source and "plate_grammar()" in source, module


def test_a_bad_grammar_is_refused_when_the_settings_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYWATCH_PLATES__GRAMMAR", '["^[A-Z"]')
    with pytest.raises(ValidationError, match="plate grammar pattern '\\^\\[A-Z': not a regex"):
        Settings()
