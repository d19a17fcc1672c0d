"""Figure export speed: cold (the first export of a process, which starts the headless browser)
and warm (kaleido's persistent server already running), per format, against exporting without
a persistent server (a browser started per call) in the same run.

    python benchmarks/export.py --artifact artifacts/covid --artifact /tmp/cxrviz-30k [--runs 5]

Each artifact runs in a fresh process, so "cold" is really cold.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, sys, time
sys.path.insert(0, {root!r})
from cxrviz.store import Store
from cxrviz import export as E
from cxrviz.figures.paper import paper_figure
store = Store.open({artifact!r}).warm()
keep = store.mask({{}})
prov = E.provenance(store, keep)
out = {{"n": int(keep.sum())}}
def once(fmt, preset="single"):
    t = time.perf_counter()
    fig, size = paper_figure(store, preset, keep=keep, warning=store.warning)
    build = time.perf_counter() - t
    data = E.render(fig, size, fmt, prov)
    return time.perf_counter() - t, build, len(data)
out["cold"] = {{fmt: once(fmt) for fmt in ("png",)}}
out["warm"] = {{fmt: [once(fmt) for _ in range({runs})] for fmt in E.FORMATS}}
import kaleido
kaleido.stop_sync_server(silence_warnings=True)
E._server_started = True  # keep render() from starting it again: a browser per call
out["per_call"] = {{fmt: [once(fmt) for _ in range(2)] for fmt in ("png",)}}
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifact", action="append", required=True)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    for artifact in args.artifact:
        code = CHILD.format(root=str(ROOT), artifact=artifact, runs=args.runs)
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              cwd=ROOT, timeout=1800)
        if done.returncode:
            print(done.stderr[-2000:])
            raise SystemExit(1)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"== {artifact}: {r['n']} points, single-column preset "
              f"(process {time.perf_counter() - t:.0f} s) ==")
        cold, build, size = r["cold"]["png"]
        print(f"  cold PNG (starts the browser): {cold:.2f} s")
        for fmt, runs in r["warm"].items():
            total = [x[0] for x in runs]
            print(f"  warm {fmt.upper():3s}: median {statistics.median(total):.2f} s "
                  f"(min {min(total):.2f}, max {max(total):.2f}; building the figure "
                  f"{statistics.median(x[1] for x in runs):.2f} s; {runs[0][2] // 1024} KB)")
        per_call = [x[0] for x in r["per_call"]["png"]]
        print(f"  PNG without the persistent server (a browser per call): "
              f"{statistics.median(per_call):.2f} s -> warm is "
              f"{statistics.median(per_call) / statistics.median(x[0] for x in r['warm']['png']):.1f}x "
              "faster")


if __name__ == "__main__":
    main()
