"""Rewrite code, tests and docs from the flat settings names to the sectioned ones.

    python tools/settings_rewrite.py PATH...            (files or folders; idempotent)
    python tools/settings_rewrite.py --check PATH...    (list what it would change; exit 1 if any)

After rewriting, it lists old names left on receivers it does not rewrite
(``stack.dask_address`` is a Stack's field, not a setting): look at each by hand.

The mapping is citywatch/settings/renames.py (``face_min_px`` -> ``faces.min_px``).
What it rewrites:

- ``CITYWATCH_FACE_MIN_PX`` -> ``CITYWATCH_FACES__MIN_PX`` in every text file;
- ``settings.face_min_px`` / ``s.face_min_px`` / ``cfg.`` / ``config.`` (any receiver
  whose last name ends in ``settings``) -> ``settings.faces.min_px``, in code and prose;
- keywords of ``Settings(...)``, of lower-case ``*settings*(...)`` helpers and of
  ``.updated(...)``: ``face_min_px=`` -> ``faces__min_px=``;
- ``x.model_copy(update={"face_min_px": v})`` -> ``x.updated(faces__min_px=v)``;
- dict literals whose keys are all setting names: ``"face_min_px"`` -> ``"faces__min_px"``;
- ``Settings(face_min_px=...)`` in prose and notebooks, and `face_min_px` alone in Markdown.

A file that mentions ``settings-rewrite: skip`` is left alone (tests of the old names).
What it cannot see (check by hand, then run the tests): settings reached under other
names, names built at run time (getattr, f-strings), fields added to a flat Settings.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RENAMES_FILE = HERE.parent / "citywatch" / "settings" / "renames.py"
TOP_LEVEL = {"user", "api_url"}
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".sh", ".txt", ".ipynb", ".cfg", ".env", ".html", ""}
SETTINGS_RECEIVER = re.compile(r"(?i)^(\w*settings|s|cfg|config)$")


def load_renames() -> dict[str, str]:
    """``RENAMED`` of citywatch/settings/renames.py, read as a literal (nothing is imported)."""
    for node in ast.parse(RENAMES_FILE.read_text()).body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(target, ast.Name) and target.id == "RENAMED" and node.value is not None:
            return {str(k): str(v) for k, v in ast.literal_eval(node.value).items()}
    raise SystemExit(f"{RENAMES_FILE}: no RENAMED mapping")


RENAMED = load_renames()
SECTIONS = {new.split(".")[0] for new in RENAMED.values()}
OWN_FILES = {RENAMES_FILE, Path(__file__).resolve()}
SKIP_MARK = "settings-rewrite: " + "skip"  # a file holding this keeps its old names (tests of them)
PACKAGE = RENAMES_FILE.parent  # the settings package names old names on purpose (error hints)


def keyword(old: str) -> str:
    return RENAMED[old].replace(".", "__")


def _last_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):  # Settings().face_min_px
        return _last_name(node.func)
    return ""


def _offsets(lines: list[str]) -> list[int]:
    starts, total = [0], 0
    for line in lines:
        total += len(line)
        starts.append(total)
    return starts


def _settings_call(node: ast.Call) -> bool:
    name = _last_name(node.func)
    return name == "Settings" or name == "updated" or ("settings" in name and name == name.lower())


def rewrite_python(source: str) -> str:
    """AST-guided edits: attributes, keywords, model_copy updates and dict keys."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    lines = re.split(r"(?<=\n)", source)
    starts = _offsets(lines)

    def pos(line: int, col: int) -> int:
        # ast columns are utf-8 byte offsets within the line
        text = lines[line - 1].encode()[:col].decode(errors="ignore")
        return starts[line - 1] + len(text)

    edits: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in RENAMED:
            if SETTINGS_RECEIVER.match(_last_name(node.value)) and node.end_lineno is not None:
                end = pos(node.end_lineno, node.end_col_offset or 0)
                edits.append((end - len(node.attr), end, RENAMED[node.attr]))
        elif isinstance(node, ast.Call):
            if _settings_call(node):
                for kw in node.keywords:
                    if kw.arg in RENAMED:
                        start = pos(kw.lineno, kw.col_offset)
                        edits.append((start, start + len(kw.arg), keyword(kw.arg)))
            func = node.func
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "model_copy"
                and not node.args
                and len(node.keywords) == 1
                and node.keywords[0].arg == "update"
                and isinstance(node.keywords[0].value, ast.Dict)
            ):
                update = node.keywords[0].value
                keys = [k.value if isinstance(k, ast.Constant) else None for k in update.keys]
                if all(isinstance(k, str) and k.isidentifier() for k in keys) and any(
                    k in RENAMED for k in keys
                ):
                    parts = []
                    for key, value in zip(keys, update.values):
                        text = ast.get_source_segment(source, value) or ""
                        name = keyword(key) if key in RENAMED else key
                        parts.append(f"{name}={text}")
                    fstart = pos(func.end_lineno or 0, func.end_col_offset or 0) - len("model_copy")
                    cend = pos(node.end_lineno or 0, node.end_col_offset or 0)
                    edits.append((fstart, cend, "updated(" + ", ".join(parts) + ")"))
        elif isinstance(node, ast.Dict) and node.keys:
            keys = [k.value if isinstance(k, ast.Constant) else None for k in node.keys]
            names = set(RENAMED) | TOP_LEVEL
            if all(isinstance(k, str) and k in names for k in keys) and any(k in RENAMED for k in keys):
                for key_node, key in zip(node.keys, keys):
                    if key in RENAMED and key_node is not None:
                        start = pos(key_node.lineno, key_node.col_offset) + 1
                        edits.append((start, start + len(str(key)), keyword(str(key))))
    return _apply(source, edits)


def _apply(source: str, edits: list[tuple[int, int, str]]) -> str:
    # outer edits (model_copy) win over edits inside them
    edits.sort(key=lambda e: (e[0], -e[1]))
    kept: list[tuple[int, int, str]] = []
    for edit in edits:
        if kept and edit[0] < kept[-1][1]:
            continue
        kept.append(edit)
    for start, end, text in reversed(kept):
        source = source[:start] + text + source[end:]
    return source


ENV = re.compile(
    r"\bCITYWATCH_(" + "|".join(sorted((k.upper() for k in RENAMED), key=len, reverse=True)) + r")\b"
)
PROSE = re.compile(r"\b(\w*[sS]ettings)\.(" + "|".join(sorted(RENAMED, key=len, reverse=True)) + r")\b")


CALL = re.compile(r"\bSettings\(([^()]*)\)")  # in prose and notebooks: Settings(storage_root=..., user=...)
CALL_KEYWORD = re.compile(r"\b(" + "|".join(sorted(RENAMED, key=len, reverse=True)) + r")=(?!=)")


def _new_keyword(match: re.Match[str]) -> str:
    return keyword(match.group(1)) + "="


def rewrite_text(text: str) -> str:
    text = ENV.sub(lambda m: "CITYWATCH_" + keyword(m.group(1).lower()).upper(), text)
    text = CALL.sub(lambda m: "Settings(" + CALL_KEYWORD.sub(_new_keyword, m.group(1)) + ")", text)
    return PROSE.sub(lambda m: f"{m.group(1)}.{RENAMED[m.group(2)]}", text)


# not `storage_root`: that is also the notebooks' parameter of the same name
MARKDOWN_NAME = re.compile(
    r"`(" + "|".join(sorted(set(RENAMED) - {"storage_root"}, key=len, reverse=True)) + r")`"
)


def rewrite_markdown(text: str) -> str:
    """A setting named alone in Markdown: `face_min_px` -> `faces.min_px`."""
    return MARKDOWN_NAME.sub(lambda m: f"`{RENAMED[m.group(1)]}`", text)


def rewrite_file(path: Path, write: bool = True) -> bool:
    try:
        original = path.read_text()
    except (UnicodeDecodeError, OSError):
        return False
    if SKIP_MARK in original:
        return False
    text = rewrite_python(original) if path.suffix == ".py" else original
    text = rewrite_text(text)
    if path.suffix == ".md":
        text = rewrite_markdown(text)
    if text != original and write:
        path.write_text(text)
    return text != original


def leftovers(path: Path) -> list[str]:
    """``x.face_min_px`` whose receiver does not look like settings: for a look by hand."""
    if path.suffix != ".py":
        return []
    try:
        source = path.read_text()
        tree = ast.parse(source)
    except (UnicodeDecodeError, OSError, SyntaxError):
        return []
    if SKIP_MARK in source:
        return []
    return [
        f"{path}:{node.lineno}: {ast.get_source_segment(source, node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in RENAMED and _last_name(node.value) not in SECTIONS
    ]


def files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
            continue
        for item in sorted(path.rglob("*")):
            if item.is_file() and not SKIP_DIRS & set(item.parts) and item.suffix in TEXT_SUFFIXES:
                found.append(item)
    unique: dict[Path, Path] = {}
    for item in found:
        unique.setdefault(item.resolve(), item)
    return [item for real, item in unique.items() if real not in OWN_FILES and PACKAGE not in real.parents]


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [Path(a) for a in argv if a != "--check"]
    if not paths:
        sys.stderr.write(__doc__ or "")
        return 2
    targets = files(paths)
    changed = [path for path in targets if rewrite_file(path, write=not check)]
    for path in changed:
        print(path)
    print(f"{len(changed)} files {'to rewrite' if check else 'rewritten'}", file=sys.stderr)
    look = [line for path in targets for line in leftovers(path)]
    if look:
        print("old names on other receivers (a Stack? a parameter?), look by hand:", file=sys.stderr)
        print("\n".join(look), file=sys.stderr)
    return 1 if check and changed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
