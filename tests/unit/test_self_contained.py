"""The repository stands alone: no tracked file points to a path outside it (a clone has
nothing beside it), and every relative link of the Markdown files lands inside it."""
import re
import subprocess
from pathlib import Path

from ioc_pipeline.config import REPO_ROOT

# built from parts, so that this file does not match itself
OUTSIDE = re.compile("|".join([r"\.\./" + "shared", "shared/" + "spec", r"(?<![\w.])/" + r"work/"]))
TEXT_SUFFIXES = {".md", ".py", ".sql", ".json", ".yaml", ".yml", ".txt", ".ini", ".toml", ".cfg", ".sh", ""}


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, check=True, capture_output=True).stdout
        names = [n for n in out.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):   # an export without git: every file but the venv
        names = [str(p.relative_to(REPO_ROOT)) for p in REPO_ROOT.rglob("*")
                 if p.is_file() and not p.relative_to(REPO_ROOT).parts[0].startswith(".")]
    return [REPO_ROOT / n for n in names
            if (REPO_ROOT / n).suffix in TEXT_SUFFIXES or n in ("Makefile", "Dockerfile")]


def test_no_tracked_file_points_outside_the_repository():
    found = []
    for path in tracked_files():
        if not path.is_file():
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(REPO_ROOT)}:{n}: {line.strip()[:120]}")
    assert not found, "paths outside the repository:\n" + "\n".join(found)


def test_markdown_links_land_inside_the_repository():
    broken = []
    for path in (p for p in tracked_files() if p.suffix == ".md"):
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue   # a URL or an anchor
            resolved = (path.parent / target.split("#")[0]).resolve()
            if REPO_ROOT.resolve() not in resolved.parents and resolved != REPO_ROOT.resolve() or not resolved.exists():
                broken.append(f"{path.relative_to(REPO_ROOT)}: {target}")
    assert not broken, broken
