"""The bucket policies in infra/s3/ match what the code writes, and keep analysts off people.

The policies are evaluated the way IAM does for these cases (an explicit Deny wins;
otherwise some Allow must match the action, the resource and the ``s3:prefix``
condition of a listing), for the keys citywatch really uses: the layout's prefixes
(citywatch/layout.py), the derived dataset's location as the code computes it, and
every top-level entry of a root the code wrote.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from typing import Any

import pytest

from citywatch import layout
from citywatch.derived import DerivedDataset
from citywatch.settings import Settings

POLICIES = Path(__file__).resolve().parents[1] / "infra" / "s3"
BUCKET, PREFIX = "city", "prod"
COMPONENTS = ("service", "worker", "analyst")
READ, WRITE, DELETE, LIST = "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"


def load(component: str) -> dict[str, Any]:
    text = (POLICIES / f"{component}.json").read_text()
    text = text.replace("CITY_BUCKET", BUCKET).replace("CITY_PREFIX", PREFIX)
    policy: dict[str, Any] = json.loads(text)
    return policy


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _matches(statement: dict[str, Any], action: str, key: str) -> bool:
    if not any(fnmatch.fnmatchcase(action, a) for a in _listed(statement["Action"])):
        return False
    if action == LIST:  # ListBucket: the bucket is the resource, the key prefix a condition
        if f"arn:aws:s3:::{BUCKET}" not in _listed(statement["Resource"]):
            return False
        prefixes = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
        return prefixes is None or any(fnmatch.fnmatchcase(key, p) for p in _listed(prefixes))
    arn = f"arn:aws:s3:::{BUCKET}/{key}"
    return any(fnmatch.fnmatchcase(arn, r) for r in _listed(statement["Resource"]))


def allows(policy: dict[str, Any], action: str, key: str) -> bool:
    statements = policy["Statement"]
    if any(s["Effect"] == "Deny" and _matches(s, action, key) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and _matches(s, action, key) for s in statements)


def key(prefix: str, rest: str = "x/y.lance") -> str:
    return f"{PREFIX}/{prefix}{rest}"


@pytest.mark.parametrize("component", COMPONENTS)
def test_policies_are_iam_documents_naming_only_the_layouts_prefixes(component: str) -> None:
    policy = load(component)
    assert policy["Version"] == "2012-10-17"
    known = {p.rstrip("/") for p in layout.ROOT_PREFIXES} | set(layout.CONFIG)
    for statement in policy["Statement"]:
        assert statement["Effect"] in ("Allow", "Deny")
        conditions = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix", [])
        for target in [*_listed(statement["Resource"]), *_listed(conditions)]:
            match = re.fullmatch(rf"(?:arn:aws:s3:::{BUCKET}/)?{PREFIX}/([^/*]+).*", target)
            if target == f"arn:aws:s3:::{BUCKET}":
                continue
            assert match and match.group(1) in known, f"{component}: {target} is not in citywatch/layout.py"


@pytest.mark.parametrize("prefix", [*layout.BIOMETRIC, layout.LEASES])
def test_the_analyst_role_reaches_no_biometric_prefix(prefix: str) -> None:
    analyst = load("analyst")
    for action in (READ, WRITE, DELETE):
        assert not allows(analyst, action, key(prefix)), (action, prefix)
    assert not allows(analyst, LIST, key(prefix, ""))
    for config in layout.CONFIG:
        assert not allows(analyst, READ, f"{PREFIX}/{config}")


def test_the_analyst_role_reads_the_derived_dataset_where_the_code_puts_it() -> None:
    analyst = load("analyst")
    derived = DerivedDataset(Settings(storage__root=f"s3://{BUCKET}/{PREFIX}"))
    assert derived.url == f"s3://{BUCKET}/{PREFIX}/{layout.ANALYTICS}db"
    table_key = derived.url.removeprefix(f"s3://{BUCKET}/") + "/faces.lance/data/0.lance"
    assert allows(analyst, READ, table_key)
    assert allows(analyst, LIST, derived.url.removeprefix(f"s3://{BUCKET}/") + "/")
    for action in (WRITE, DELETE):
        assert not allows(analyst, action, table_key)  # analysts read; the workers publish


@pytest.mark.parametrize(
    ("component", "writes"),
    [
        # the index/sweep/retention workers: tables, crops, leases, the audit, the analyst dataset
        ("worker", (layout.DB, layout.THUMBS, layout.LEASES, layout.AUDIT, layout.ANALYTICS)),
        # the service: tables, sign-in state, uploaded probes, reports and exports, the audit
        ("service", (layout.DB, layout.AUTH, layout.SERVICE, layout.REPORTS, layout.EXPORTS, layout.AUDIT)),
    ],
)
def test_each_component_may_write_what_it_writes(component: str, writes: tuple[str, ...]) -> None:
    policy = load(component)
    for prefix in writes:
        assert allows(policy, WRITE, key(prefix)), (component, prefix)
        assert allows(policy, READ, key(prefix)), (component, prefix)
        assert allows(policy, LIST, key(prefix, "")), (component, prefix)


def test_the_audit_journal_is_append_only_and_footage_is_never_rewritten() -> None:
    for component in ("service", "worker"):
        policy = load(component)
        assert not allows(policy, DELETE, key(layout.AUDIT, "seq/000000000001.json"))
        assert not allows(policy, WRITE, key(layout.FOOTAGE, "cam-a/20261120T080000Z.mp4"))
    assert allows(load("worker"), DELETE, key(layout.FOOTAGE, "cam-a/20261120T080000Z.mp4"))  # retention
    assert not allows(load("worker"), READ, key(layout.AUTH, "sessions/x"))  # sign-in state: service only


def _top_level(root: Path) -> set[str]:
    return {p.name + "/" if p.is_dir() else p.name for p in root.iterdir()}


@pytest.mark.slow
def test_an_indexed_root_holds_only_the_layouts_prefixes(indexed) -> None:  # noqa: ANN001
    """What the index flow wrote (besides the sample's own files) is in the layout and the policies."""
    written = _top_level(indexed.root) - {"sample/"}
    assert written <= {*layout.ROOT_PREFIXES, *layout.CONFIG}, written
    assert {layout.DB, layout.FOOTAGE, layout.THUMBS, layout.AUDIT, layout.ANALYTICS} <= written
    worker = load("worker")
    for entry in written:
        if entry.endswith("/") and entry != layout.FOOTAGE:
            assert allows(worker, WRITE, key(entry)), entry
