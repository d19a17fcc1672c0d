"""Every file a reader hands on resolves inside its dataset folder, after symlinks.

`locate(root, files)` checks a column of paths relative to the folder at once:
1. lexically, column-wise: blank, absolute outside the folder, or climbing out with ".." is
   refused ("outside the dataset folder" / "no image file named");
2. on disk, by one walk of only the directories the paths name (os.scandir: one directory read per
   directory, no stat per file): a path is found when it names a regular file reached through
   directories and symlinks that all stay inside the folder; a path through a symlink that
   resolves outside is "outside the dataset folder"; anything else "image file not found".
The walk costs one directory read per directory listed, so 377k MIMIC files are checked without a
system call per file (benchmarks/mimic_read.py measures it).
"""
from __future__ import annotations

import os
import posixpath
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pyarrow as pa

from cxrviz import schema as S


_TEXT = pd.ArrowDtype(pa.string())
WALK_THREADS = 8


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root + os.sep)


def _relative(root: str, files: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(normalised relative paths, reasons) for raw path strings, column-wise."""
    text = files.astype(_TEXT).fillna("").str.strip()  # Arrow strings: column-wise kernels
    reasons = pd.Series("", index=files.index, dtype=object)
    reasons[text == ""] = S.SKIPPED_NO_FILE
    absolute = text.str.startswith("/")
    under = absolute & text.str.startswith(root + "/")
    text = text.where(~under, text.str.slice(len(root) + 1))
    reasons[absolute & ~under] = S.SKIPPED_OUTSIDE
    # only rows that can need it are normalised (plain substring tests are cheap, regexes not)
    odd = (text.str.contains("//", regex=False) | text.str.contains("./", regex=False)
           | text.str.endswith("/") | text.str.endswith("/.") | (text == "."))
    if odd.any():
        text[odd] = (text[odd].astype(object).str.replace(r"(^|/)\.(?=/|$)", r"\1", regex=True)
                     .str.replace(r"/{2,}", "/", regex=True).str.strip("/"))
    climbs = text.str.contains("..", regex=False)
    climbs[climbs] = text[climbs].str.contains(r"(?:^|/)\.\.(?:/|$)", regex=True).to_numpy(bool)
    if climbs.any():  # rare: normalise those rows only
        text[climbs] = text[climbs].map(posixpath.normpath)
        reasons[climbs & (text.str.startswith("../") | (text == ".."))] = S.SKIPPED_OUTSIDE
    reasons[(reasons == "") & (text.isin(["", "."]) | text.str.contains("\x00", regex=False))] = \
        S.SKIPPED_NO_FILE
    return text, reasons


def _needed_dirs(rel: pd.Series) -> set:
    """Every directory (relative, "" for the root) that is an ancestor of one of the paths."""
    parents = pd.unique(rel.str.rpartition("/")[0])
    needed = {""}
    for d in parents:  # unique directories, not files
        while d and d not in needed:
            needed.add(d)
            d = d.rpartition("/")[0]
    return needed


def _scan(rel: str, real: str, root: str, needed: set):
    """One directory: (regular files, symlinks resolving outside root to files or nothing, to
    directories, and the needed subdirectories to walk next as (relative, real) pairs)."""
    found, outside, outside_dirs, below = [], [], [], []
    try:
        entries = os.scandir(real)
    except OSError:
        return found, outside, outside_dirs, below
    with entries:
        for entry in entries:
            path = f"{rel}/{entry.name}" if rel else entry.name
            try:
                if entry.is_symlink():
                    target = os.path.realpath(entry.path)
                    if not _inside(target, root):
                        (outside_dirs if os.path.isdir(target) else outside).append(path)
                    elif os.path.isdir(target):
                        if path in needed:  # needed paths are finite: a loop ends there
                            below.append((path, target))
                    elif os.path.isfile(target):
                        found.append(path)
                elif entry.is_dir(follow_symlinks=False):
                    if path in needed:
                        below.append((path, entry.path))
                elif entry.is_file(follow_symlinks=False):
                    found.append(path)
            except OSError:
                continue
    return found, outside, outside_dirs, below


def _walk(root: str, needed: set, threads: int = WALK_THREADS):
    """Breadth-first over the needed directories, each level's directories read by a pool of
    threads (directory reads wait on the disk, not on Python: a network share gains most)."""
    found, outside, outside_dirs = [], [], []
    level = [("", root)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        while level:
            below = []
            for f, o, od, b in pool.map(lambda d: _scan(d[0], d[1], root, needed), level,
                                        chunksize=max(1, len(level) // (threads * 4))):
                found += f
                outside += o
                outside_dirs += od
                below += b
            level = below
    return found, outside, outside_dirs


def locate(root, files: pd.Series, *, walk: bool = True):
    """(reasons, absolute paths) on the index of `files`: reasons "" where the file may be
    decoded, else why not; paths root/path (normalised) for every row."""
    root = os.path.realpath(Path(root))
    rel, reasons = _relative(root, files)
    paths = root + "/" + rel
    if not walk or not len(rel):
        return reasons, paths
    todo = reasons == ""
    found, outside, outside_dirs = _walk(root, _needed_dirs(rel[todo]))
    ok = rel.isin(pd.Index(found))
    via_outside = rel.isin(pd.Index([*outside, *outside_dirs]))
    if outside_dirs:  # few in practice: a linked folder, not one link per image
        via_outside |= rel.str.startswith(tuple(p + "/" for p in outside_dirs))
    reasons[todo & via_outside] = S.SKIPPED_OUTSIDE
    reasons[todo & ~via_outside & ~ok] = S.SKIPPED_NOT_FOUND
    return reasons, paths
