"""Where a reader may open files: inside its dataset folder, after symlinks.

Metadata is data a reader does not control: a `filename` of `../../secret.jpg`, an absolute path,
an absolute `folder`, or a symlink inside the folder that points elsewhere would otherwise pull
any readable file on the machine into an artifact's `display/` (served by the app). Every reader
asks `inside` before it lists a file to decode; a file that is not inside is skipped with
OUTSIDE_REASON and counted like any other skip.
"""
from __future__ import annotations

from pathlib import Path

OUTSIDE_REASON = "outside the dataset folder"


def inside(root: Path, *parts: str) -> Path | None:
    """root / parts with every `..` and symlink resolved, or None when that leaves `root`.

    `root` must already be resolved. An absolute part replaces what came before it (pathlib's
    rule), so an absolute `folder` or `filename` is judged by where it points, like any other.
    The file need not exist: a missing file inside the folder is the decoder's skip to record.
    """
    try:
        resolved = root.joinpath(*parts).resolve(strict=False)
    except (OSError, RuntimeError, ValueError):  # symlink loops, NUL bytes in a name
        return None
    return resolved if resolved.is_relative_to(root) else None
