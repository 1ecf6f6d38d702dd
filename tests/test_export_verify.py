"""Export signatures and verification: Ed25519 keys, canonical JSON, every check by name.

Hand-made exports (real files, a real key store, the real CLI); the end-to-end export
of the sample is tests/test_export_e2e.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from citywatch.cli.main import main
from citywatch.errors import BadInputError
from citywatch.governance.export_verify import export_trusted_keys, verify_export
from citywatch.governance.keys import FileKeyStore, canonical_json, load_public_keys, parse_public_keys
from citywatch.governance.manifest import FORMAT, export_key_store, export_signer, render_manifest, sign
from citywatch.settings import Settings
from citywatch.storage import Storage

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": [1.0, 0.5, -0.0]}, b'{"a":[1,0.5,0],"b":1}'),
        ({"x": 1e21, "y": 1e-7, "z": 123456789.125}, b'{"x":1e+21,"y":1e-7,"z":123456789.125}'),
        ({"\u00e9": "caf\u00e9", "e": "\u2028"}, '{"e":"\u2028","\u00e9":"caf\u00e9"}'.encode()),
        ({"\U0001f600": 1, "\ufb01": 2}, '{"\U0001f600":1,"\ufb01":2}'.encode()),  # UTF-16 order
        ({"s": 'a"b\\c\n'}, b'{"s":"a\\"b\\\\c\\n"}'),
        ({"t": True, "n": None}, b'{"n":null,"t":true}'),
    ],
    ids=["sorted-ints", "exponents", "unicode", "utf16-order", "escapes", "literals"],
)
def test_canonical_json_follows_rfc_8785(value: object, expected: bytes) -> None:
    assert canonical_json(value) == expected


def test_canonical_json_refuses_what_it_cannot_represent() -> None:
    with pytest.raises(BadInputError, match="canonicalise"):
        canonical_json({"x": float("nan")})


# --- keys -------------------------------------------------------------------------------------
def test_key_is_made_once_private_stable_and_refused_when_open(tmp_path: Path) -> None:
    settings = Settings(storage__root=str(tmp_path), storage__state_dir=str(tmp_path / "state"))
    first, second = export_signer(settings), export_signer(settings)
    path = tmp_path / "state" / "keys" / "export_ed25519.pem"
    assert first.fingerprint == second.fingerprint and first.key_id == first.fingerprint[:16]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    (published,) = load_public_keys(f"{path}.pub").ids()
    assert published == first.key_id
    os.chmod(path, 0o640)
    with pytest.raises(BadInputError, match="chmod 600"):
        export_signer(settings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no Ed25519"),
        ("ssh-rsa AAAA x\n", "expected 'ed25519"),
        ("ed25519 not-base64!\n", "not an Ed25519 key"),
        ("ed25519 " + "A" * 43 + "= 0123456789abcdef\n", "is not this key's"),
    ],
)
def test_bad_public_key_files_are_refused(text: str, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        parse_public_keys(text, "keys.txt")


# --- a hand-made export -----------------------------------------------------------------------
@pytest.fixture()
def signed_export(tmp_path: Path) -> tuple[Settings, Path, Path]:
    """A hand-made export (clip bytes + source file) with a signed manifest."""
    settings = Settings(storage__root=str(tmp_path / "root"), storage__state_dir=str(tmp_path / "state"))
    folder = tmp_path / "root" / "exports" / "C1"
    folder.mkdir(parents=True)
    clip, source = folder / "e1.mp4", tmp_path / "root" / "segment.mp4"
    clip.write_bytes(b"clip bytes" * 100)
    source.write_bytes(b"source bytes")
    signer = export_signer(settings)
    document = {
        "format": FORMAT,
        "export_id": "e1",
        "case_id": "C1",
        "encoding": {"fps": 12.5, "frames": 3},
        "signer": {"algorithm": "Ed25519", "key_id": signer.key_id, "fingerprint": signer.fingerprint},
        "files": {
            "clip": {
                "name": clip.name,
                "size_bytes": clip.stat().st_size,
                "sha256": hashlib.sha256(clip.read_bytes()).hexdigest(),
            }
        },
        "sources": [
            {
                "segment_id": "s1",
                "uri": str(source),
                "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
            }
        ],
    }
    manifest = folder / "e1.manifest.json"
    manifest.write_bytes(render_manifest(sign(document, signer)))
    return settings, manifest, source


def _failed(settings: Settings, manifest: Path, **options: object) -> dict[str, str]:
    report = verify_export(Storage(settings), export_trusted_keys(settings, []), str(manifest), **options)  # type: ignore[arg-type]
    return {c.name: c.status for c in report.checks if c.status != "ok"}


def test_verify_passes_and_a_gone_source_fails_unless_allowed(signed_export) -> None:  # noqa: ANN001
    settings, manifest, source = signed_export
    assert _failed(settings, manifest) == {}
    assert _failed(settings, manifest.with_name("e1.mp4")) == {}  # the clip's path works too
    source.unlink()
    assert _failed(settings, manifest) == {"source s1": "failed"}
    assert _failed(settings, manifest, allow_missing_source=True) == {"source s1": "gone"}


@pytest.mark.parametrize(
    ("target", "find", "offset", "expected"),
    [
        ("manifest", '"case_id": "C1"', -2, {"signature": "failed", "sources": "skipped"}),
        ("manifest", '"fps": 12.5', -1, {"signature": "failed", "sources": "skipped"}),
        ("manifest", '"signature": "', 1, {"signature": "failed", "sources": "skipped"}),
        ("manifest", '"signature": "', 14, {"signature": "failed", "sources": "skipped"}),
        ("manifest", '  "export_id"', 0, {"manifest": "failed"}),
        ("manifest", "{", 0, {"manifest": "failed", "signature": "skipped"}),
        ("clip", "clip bytes", 3, {"clip": "failed"}),
        ("source", "source", 0, {"source s1": "failed"}),
    ],
    ids=["field", "number", "field-name", "signature", "whitespace", "json", "clip", "source"],
)
def test_one_changed_byte_fails_the_named_check(
    signed_export,
    target,
    find,
    offset,  # noqa: ANN001
    expected,
) -> None:
    settings, manifest, source = signed_export
    path = {"manifest": manifest, "clip": manifest.with_name("e1.mp4"), "source": source}[target]
    data = bytearray(path.read_bytes())
    at = data.index(find.encode()) + (offset if offset >= 0 else len(find) + offset)
    data[at] = ord("\t") if data[at] == ord(" ") else data[at] ^ 0x01
    path.write_bytes(bytes(data))
    assert _failed(settings, manifest) == expected


def test_a_manifest_resigned_with_another_key_is_refused_by_id(signed_export, tmp_path: Path) -> None:  # noqa: ANN001
    settings, manifest, _ = signed_export
    document = json.loads(manifest.read_text())
    document["case_id"] = "C2"
    forger = FileKeyStore(tmp_path / "forger" / "key.pem", "export").ensure()
    document["signer"] = {"algorithm": "Ed25519", "key_id": forger.key_id, "fingerprint": forger.fingerprint}
    manifest.write_bytes(render_manifest(sign(document, forger)))
    report = verify_export(Storage(settings), export_trusted_keys(settings, []), str(manifest))
    (check,) = report.failed
    assert check.name == "signature" and forger.key_id in check.detail and "not a trusted key" in check.detail
    assert [c.status for c in report.checks if c.name == "sources"] == ["skipped"]  # never fetched


def test_a_forged_manifest_never_fetches_its_sources(signed_export) -> None:  # noqa: ANN001
    settings, manifest, _ = signed_export
    document = json.loads(manifest.read_text())
    document["sources"][0]["uri"] = "s3://attacker-bucket/beacon.mp4"  # verify must not touch this
    manifest.write_bytes(render_manifest(document))
    report = verify_export(Storage(settings), export_trusted_keys(settings, []), str(manifest))
    assert {c.name: c.status for c in report.checks} == {
        "manifest": "ok",
        "signature": "failed",
        "clip": "ok",
        "sources": "skipped",
    }


def test_old_exports_still_verify_after_key_rotation(signed_export) -> None:  # noqa: ANN001
    settings, manifest, _ = signed_export
    store = export_key_store(settings)
    old, new = store.rotate()
    assert old != new and export_signer(settings).key_id == new
    assert set(load_public_keys(store.history_path).ids()) == {old, new}
    assert _failed(settings, manifest) == {}


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "citywatch.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_verify_on_another_machine_needs_only_the_public_key(signed_export, tmp_path: Path) -> None:  # noqa: ANN001
    settings, manifest, _ = signed_export
    public = tmp_path / "published.keys"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYWATCH_")}
    env["PYTHONPATH"] = str(REPO)
    here = {
        **env,
        "CITYWATCH_STORAGE__ROOT": settings.storage.root,
        "CITYWATCH_STORAGE__STATE_DIR": settings.storage.state_dir,
    }
    published = _cli("keys", "public", cwd=tmp_path, env=here)
    assert published.returncode == 0, published.stderr
    public.write_text(published.stdout)
    elsewhere = tmp_path / "elsewhere"  # a fresh directory: no state, no keys, no storage root
    elsewhere.mkdir()
    ok = _cli("export", "verify", str(manifest), "--public-key", str(public), cwd=elsewhere, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "export verified" in ok.stdout
    unknown = _cli("export", "verify", str(manifest), cwd=elsewhere, env=env)
    assert unknown.returncode == 1 and "signature: no trusted public key" in unknown.stdout
    assert sorted(p.name for p in elsewhere.rglob("*")) == []  # verify wrote nothing, no key


def test_keys_rotate_is_admin_only_and_audited(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from citywatch.governance.audit_log import AuditLog
    from citywatch.governance.auth import write_demo_users

    settings = Settings(storage__root=str(tmp_path / "root"), storage__state_dir=str(tmp_path / "state"))
    storage = Storage(settings)
    write_demo_users(storage)
    base = ["--root", settings.storage.root]
    os.environ["CITYWATCH_STORAGE__STATE_DIR"] = settings.storage.state_dir
    try:
        assert main([*base, "--user", "demo-investigator", "keys", "rotate"]) == 3
        assert main([*base, "--user", "demo-admin", "keys", "rotate"]) == 0
    finally:
        del os.environ["CITYWATCH_STORAGE__STATE_DIR"]
    assert "signing key rotated" in capsys.readouterr().out
    rows = AuditLog(storage).rows()
    assert [(r.user, r.action, r.outcome) for r in rows] == [
        ("demo-investigator", "keys_manage", "refused"),
        ("demo-admin", "keys_manage", "ok"),
    ]
