"""The WebGL map's committed bundle (assets/map/) is what its source builds: the build record
names the sha256 of every source file, package.json and package-lock.json; where node and
frontend/node_modules are present, a fresh build must give the same bytes."""
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRONTEND, BUNDLE = ROOT / "frontend", ROOT / "assets" / "map"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sources() -> dict:
    files = sorted(p for p in (FRONTEND / "src").rglob("*") if p.is_file())
    files += [FRONTEND / f for f in ("package.json", "package-lock.json", "build.mjs")]
    return {p.relative_to(FRONTEND).as_posix(): sha(p) for p in files}


def test_build_record_matches_the_source_and_lockfile():
    record = json.loads((BUNDLE / "build-info.json").read_text())
    assert record["built_from"] == sources(), (
        "frontend/ changed since assets/map/ was built: run `cd frontend && npm ci && "
        "node build.mjs` and commit assets/map/")
    assert record["bundle_sha256"] == sha(BUNDLE / "cxrviz-map.js")


def test_pinned_versions_and_licences():
    package = json.loads((FRONTEND / "package.json").read_text())
    lock = json.loads((FRONTEND / "package-lock.json").read_text())
    for deps in (package["dependencies"], package["devDependencies"]):
        for name, version in deps.items():
            assert version[0].isdigit(), f"{name} {version} is not pinned"
            assert lock["packages"][f"node_modules/{name}"]["version"] == version
    licences = (BUNDLE / "LICENSES.txt").read_text()
    record = json.loads((BUNDLE / "build-info.json").read_text())
    for name, version in record["packages"].items():
        assert f"==== {name} {version} " in licences


def test_where_node_is_installed_a_fresh_build_gives_the_same_bytes(tmp_path):
    """Without node and frontend/node_modules (a user's machine, a clean clone) the build
    record above is the check; with them (a developer's machine) the bytes are compared."""
    node = shutil.which("node")
    if node is None or not (FRONTEND / "node_modules" / "esbuild").is_dir():
        assert json.loads((BUNDLE / "build-info.json").read_text())["built_from"] == sources()
        return
    subprocess.run([node, "build.mjs", str(tmp_path)], cwd=FRONTEND, check=True, timeout=300)
    for name in ("cxrviz-map.js", "LICENSES.txt", "build-info.json"):
        assert (tmp_path / name).read_bytes() == (BUNDLE / name).read_bytes(), name
