"""Signing keys: Ed25519 keys that sign export manifests and audit checkpoints.

Signing goes through one small interface, :class:`Signer` (``key_id``,
``fingerprint``, ``public_bytes()``, ``sign(data)``), so a KMS or HSM can stand in
for :class:`FileKeyStore` later. A file key store keeps the private key as PKCS#8
PEM in a file that only its owner may read (mode 0600; a key file readable by group
or others is refused), made on first use by the signer only: nothing that verifies
ever creates or writes a key. Beside it, ``<key file>.pub`` holds every public key the
store has had (rotation appends), one line each::

    ed25519 <base64 of the 32-byte public key> <key_id> <comment>

That is also the format of a *trusted keys file* (``citywatch keys public`` prints
one); PEM ``PUBLIC KEY`` blocks are accepted too. A key's ``fingerprint`` is the
sha256 of its raw public key (hex), its ``key_id`` the first 16 hex digits.

What is signed is canonical JSON (RFC 8785, the ``rfc8785`` package): sorted keys,
no whitespace, UTF-8, ECMAScript number forms, so any verifier rebuilds the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from citywatch.errors import BadInputError, NotFoundError

ALGORITHM = "Ed25519"
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_PEM_BLOCK = re.compile(
    r"-----BEGIN PUBLIC KEY-----\s+[A-Za-z0-9+/=\s]+?-----END PUBLIC KEY-----", re.MULTILINE
)


def canonical_json(document: object) -> bytes:
    """RFC 8785 canonical JSON bytes of ``document`` (what signatures cover)."""
    try:
        return rfc8785.dumps(document)  # type: ignore[arg-type]
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise BadInputError(f"cannot canonicalise the document for signing: {exc}") from exc


def fingerprint_of(raw_public: bytes) -> str:
    return hashlib.sha256(raw_public).hexdigest()


def key_id_of(raw_public: bytes) -> str:
    return fingerprint_of(raw_public)[:16]


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_line(raw_public: bytes, comment: str) -> str:
    text = " ".join(comment.split())
    return f"ed25519 {base64.b64encode(raw_public).decode()} {key_id_of(raw_public)} {text}".rstrip()


class Signer(Protocol):
    """What signs: a key file here, a KMS or HSM behind the same four members later."""

    @property
    def key_id(self) -> str: ...

    @property
    def fingerprint(self) -> str: ...

    def public_bytes(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes: ...


def _check_private_mode(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise BadInputError(
            f"signing key {path} is open to group or others (mode {stat.filemode(mode)}): chmod 600 {path}"
        )


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, key: Ed25519PrivateKey, *, replace: bool) -> bool:
    """Write ``key`` to ``path`` (0600) via a temporary file: renamed over an old key
    (``replace``), else hard-linked (False if a key appeared there first)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(_pem(key))
    try:
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


class FileKeyStore:
    """An Ed25519 private key in a 0600 PEM file, with its public key history beside it."""

    def __init__(self, path: str | Path, purpose: str) -> None:
        self.path = Path(path).expanduser().resolve()
        self.purpose = purpose
        self._key: Ed25519PrivateKey | None = None

    @property
    def history_path(self) -> Path:
        return self.path.with_name(self.path.name + ".pub")

    def exists(self) -> bool:
        return self.path.is_file()

    def ensure(self) -> FileKeyStore:
        """Create the key if there is none (signers only); check its permissions."""
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            key = Ed25519PrivateKey.generate()
            if _write_private(self.path, key, replace=False):  # else another process made it first
                self._append_history(_raw(key.public_key()))
        self._load()
        return self

    def _load(self) -> Ed25519PrivateKey:
        if self._key is None:
            if not self.path.is_file():
                raise NotFoundError(f"no {self.purpose} signing key at {self.path}")
            _check_private_mode(self.path)
            data = self.path.read_bytes()
            try:
                key = serialization.load_pem_private_key(data, password=None)
            except (ValueError, TypeError) as exc:
                raise BadInputError(f"signing key {self.path} is not a PEM private key: {exc}") from exc
            if not isinstance(key, Ed25519PrivateKey):
                raise BadInputError(f"signing key {self.path} is not an Ed25519 key")
            self._key = key
        return self._key

    def _append_history(self, raw_public: bytes) -> None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        line = public_key_line(raw_public, f"citywatch {self.purpose} key created {stamp}")
        with self.history_path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    # --- Signer ---------------------------------------------------------------------
    def public_bytes(self) -> bytes:
        return _raw(self._load().public_key())

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.public_bytes())

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_bytes())

    def sign(self, data: bytes) -> bytes:
        return self._load().sign(data)

    # --- publishing and rotation ----------------------------------------------------------
    def public_keys_text(self) -> str:
        """Every public key this store has had (oldest first), as a trusted keys file."""
        if not self.history_path.is_file():
            if not self.exists():
                raise NotFoundError(f"no {self.purpose} signing key at {self.path} yet")
            self._append_history(self.public_bytes())
        return self.history_path.read_text(encoding="utf-8")

    def rotate(self) -> tuple[str, str]:
        """A new key replaces the current one (whose public key stays in the history, so
        what it signed still verifies; the old private key is gone). Returns (old, new) ids."""
        old = self.ensure().key_id
        key = Ed25519PrivateKey.generate()
        _write_private(self.path, key, replace=True)
        self._key = None
        self._append_history(_raw(key.public_key()))
        return old, self.key_id


# --- trusted public keys ---------------------------------------------------------------------
@dataclass(frozen=True)
class TrustedKeys:
    """Public keys a verifier trusts, by key id, and where each came from."""

    keys: dict[str, tuple[Ed25519PublicKey, str]]

    def __bool__(self) -> bool:
        return bool(self.keys)

    def ids(self) -> list[str]:
        return sorted(self.keys)

    def verify(self, key_id: object, fingerprint: object, data: bytes, signature: object) -> str:
        """'' if ``signature`` (base64) is a valid signature of ``data`` by the trusted key
        ``key_id`` (whose fingerprint must be ``fingerprint`` unless that is None);
        otherwise the reason it is not."""
        if not isinstance(key_id, str) or key_id not in self.keys:
            known = ", ".join(self.ids()) or "none"
            return (
                f"signed by key {key_id!r}, which is not a trusted key (trusted: {known}); "
                "pass the signer's public key with --public-key or --trusted-keys if you trust it"
            )
        public, _ = self.keys[key_id]
        if fingerprint is not None and fingerprint != fingerprint_of(_raw(public)):
            return f"the fingerprint {fingerprint!r} is not that of trusted key {key_id}"
        if not isinstance(signature, str):
            return "there is no signature"
        try:
            public.verify(base64.b64decode(signature, validate=True), data)
        except (InvalidSignature, binascii.Error, ValueError):
            return f"the {ALGORITHM} signature does not match: the document was changed after signing"
        return ""

    def merged(self, other: TrustedKeys) -> TrustedKeys:
        return TrustedKeys({**self.keys, **other.keys})


def parse_public_keys(text: str, source: str) -> TrustedKeys:
    """Public keys from ``ed25519 BASE64 [KEY_ID] [comment]`` lines and PEM blocks."""
    keys: dict[str, tuple[Ed25519PublicKey, str]] = {}
    for block in _PEM_BLOCK.findall(text):
        try:
            public = serialization.load_pem_public_key(block.encode())
        except ValueError as exc:
            raise BadInputError(f"public key file {source}: a PEM block is not a public key: {exc}") from exc
        if not isinstance(public, Ed25519PublicKey):
            raise BadInputError(f"public key file {source}: a PEM key is not Ed25519")
        keys[key_id_of(_raw(public))] = (public, source)
    for number, line in enumerate(_PEM_BLOCK.sub("", text).splitlines(), start=1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0] != "ed25519" or len(parts) < 2:
            raise BadInputError(
                f"public key file {source}, line {number}: expected 'ed25519 <base64 key> "
                "[key id] [comment]' or a PEM PUBLIC KEY block"
            )
        try:
            raw = base64.b64decode(parts[1], validate=True)
            public = Ed25519PublicKey.from_public_bytes(raw)
        except (binascii.Error, ValueError) as exc:
            raise BadInputError(f"public key file {source}, line {number}: not an Ed25519 key") from exc
        if len(parts) > 2 and _KEY_ID.fullmatch(parts[2]) and parts[2] != key_id_of(raw):
            raise BadInputError(
                f"public key file {source}, line {number}: key id {parts[2]} is not this key's "
                f"({key_id_of(raw)})"
            )
        keys[key_id_of(raw)] = (public, source)
    if not keys:
        raise BadInputError(f"public key file {source} holds no Ed25519 public key")
    return TrustedKeys(keys)


def load_public_keys(path: str | Path) -> TrustedKeys:
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise NotFoundError(f"public key file {file} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"public key file {file} cannot be read: {exc}") from exc
    return parse_public_keys(text, str(file))


def trusted_keys(files: list[str], own_store: FileKeyStore | None) -> TrustedKeys:
    """The keys given in ``files`` plus, read-only, the history of ``own_store`` if it exists."""
    trusted = TrustedKeys({})
    for path in files:
        trusted = trusted.merged(load_public_keys(path))
    if own_store is not None and own_store.history_path.is_file():
        trusted = trusted.merged(load_public_keys(own_store.history_path))
    return trusted


def sign_document(document: dict[str, object], signer: Signer) -> str:
    """Base64 signature of ``document``'s canonical JSON."""
    return base64.b64encode(signer.sign(canonical_json(document))).decode()
