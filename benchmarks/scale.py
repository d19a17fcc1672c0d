"""benchmarks/precompute.py --sizes: precompute at 1k, 4k, 16k distinct images, in one run.

Per run: the model-only ceiling (preloaded inputs, in process), the decode-only rate (prepare_file
in 1 and in W processes, W = the workers the runs use), and per size an end-to-end CLI run in a
process of its own from an empty cache (its features stage in images/s, its whole time, and its
peak RSS as the kernel reports it for that process, decoders included, via os.wait4).

The limit of this machine: the model (at its ceiling on all C cores: C / ceiling core-seconds per
image) and decoding (1 / decode rate per core) share the C cores, so no split of them beats
    C / (C / ceiling + 1 / decode_per_core)  images/s.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


JPEG_MAGIC, PNG_MAGIC = b"\xff\xd8", b"\x89PNG\r\n\x1a\n"


def tagged_copy(data: bytes, tag: str) -> bytes | None:
    """The file's bytes with `tag` added where every decoder skips it: a COM segment right after
    a JPEG's SOI marker, a tEXt chunk right after a PNG's IHDR (by content: some of the
    collection's .jpg files are PNGs). None for other formats."""
    text = tag.encode()
    if data[:2] == JPEG_MAGIC:
        return data[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + data[2:]
    if data[:8] == PNG_MAGIC:
        ihdr_end = 8 + 8 + struct.unpack(">I", data[8:12])[0] + 4
        body = b"tEXt" + b"copy\x00" + text
        chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
        return data[:ihdr_end] + chunk + data[ihdr_end:]
    return None


def distinct_dataset(dataset: Path, n: int, out: Path) -> Path:
    """A covid-chestxray-dataset layout at `out` with n distinct frontal images: the collection's
    frontal JPEG / PNG rows, copy j of each with filename c<j>-<name> and patient <id>-c<j>."""
    from cxrviz.data.covid import read_covid

    if (out / "metadata.csv").is_file() and len(pd.read_csv(out / "metadata.csv")) == n:
        return out
    shutil.rmtree(out, ignore_errors=True)
    (out / "images").mkdir(parents=True)
    frontal = read_covid(dataset).frame.drop_duplicates("path")
    usable = [(name, Path(p)) for name, p in zip(frontal["filename"], frontal["path"])
              if Path(p).is_file() and tagged_copy(Path(p).read_bytes()[:64], "") is not None]
    raw = pd.read_csv(dataset / "metadata.csv", dtype=str, keep_default_na=False)
    raw = raw.drop_duplicates("filename").set_index("filename")
    rows = []
    for i in range(n):
        copy, (name, path) = divmod(i, len(usable))[0], usable[i % len(usable)]
        data = tagged_copy(path.read_bytes(), f"cxrviz benchmark copy {copy}")
        new_name = f"c{copy}-{name}"
        (out / "images" / new_name).write_bytes(data)
        row = raw.loc[name].to_dict()
        row.update(filename=new_name, folder="images",
                   patientid=f"{row['patientid']}-c{copy}" if row["patientid"] else "")
        rows.append(row)
    pd.DataFrame(rows).to_csv(out / "metadata.csv", index=False)
    return out


def _decode(path):
    from cxrviz.compute.features import prepare_file

    arr, _, reason = prepare_file(path)
    return reason is None


def decode_rate(paths, processes: int) -> float:
    """prepare_file (read, decode, crop, resize, display JPEG) in `processes` processes."""
    if processes <= 1:
        start = time.perf_counter()
        for p in paths:
            _decode(p)
        return len(paths) / (time.perf_counter() - start)
    with Pool(processes) as pool:
        pool.map(_decode, paths[:processes])  # start-up and imports outside the timing
        start = time.perf_counter()
        pool.map(_decode, paths, chunksize=4)
        return len(paths) / (time.perf_counter() - start)


def prefill(dataset: Path, cache: Path, precision: str) -> None:
    """--prefill: every image's cache entries written up front (random outputs under the keys
    the CLI run will look up, one real small JPEG as every display image), so that run hashes,
    assembles, fits UMAP, derives and writes without the model: its memory at each size."""
    from cxrviz.compute.cache import ResultCache, key_of
    from cxrviz.compute.features import DISPLAY_VERSION, feature_key, read_and_hash
    from cxrviz.compute.model import load_embedder
    from cxrviz.data.images import notice_jpeg

    spec = load_embedder("random", precision=precision).spec
    store, rng, jpeg = ResultCache(cache), np.random.default_rng(0), notice_jpeg("prefill")
    for path in sorted((dataset / "images").iterdir()):
        sha = read_and_hash(str(path))[0]
        store.put_arrays("features", feature_key(sha, spec),
                         features=rng.random(1024, dtype=np.float32),
                         logits=rng.normal(0, 1000, 18).astype(np.float32))
        store.put_bytes("display", key_of(sha, DISPLAY_VERSION), jpeg, ".jpg")


def cli_run(dataset: Path, out: Path, cache: Path, args) -> dict:
    """One precompute CLI run (from an empty cache unless --prefill); its manifest's timings and
    its peak RSS (os.wait4)."""
    shutil.rmtree(cache, ignore_errors=True)
    if args.prefill:
        prefill(dataset, cache, args.precision)
    cmd = [sys.executable, "-m", "precompute", "--dataset", str(dataset), "--out", str(out),
           "--weights", "random", "--precision", args.precision, "--cache-dir", str(cache),
           "--device", "cpu", "--quiet"]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"precompute failed ({proc.returncode}): {err[-2000:]}")
    manifest = json.loads((out / "manifest.json").read_text())
    return {"wall": wall, "timings": manifest["timings"], "peak_mib": usage.ru_maxrss / 1024,
            "embedded": manifest["counts"]["embedded_covid"], "run": manifest["device"]}


def run_sizes(args) -> None:
    import torch

    from benchmarks.precompute import model_ceiling
    from cxrviz.compute.device import default_workers, usable_cores
    from cxrviz.compute.features import prepare_file
    from cxrviz.compute.model import load_embedder

    tmp = Path(args.tmp or "/tmp") / "cxrviz-bench-scale"
    dataset = Path(args.dataset)
    cores = usable_cores()
    workers = default_workers("cpu") if args.workers is None else args.workers
    print(f"{cores} cores, torch threads {torch.get_num_threads()}, precision {args.precision}, "
          f"decoding workers {workers}{' (default)' if args.workers is None else ''}; load "
          f"average {os.getloadavg()[0]:.1f}")
    if args.prefill:
        return memory_only(dataset, tmp, args)
    sample = distinct_dataset(dataset, args.decode_images, tmp / "decode-sample")
    paths = sorted(str(p) for p in (sample / "images").iterdir())
    inputs = np.stack([prepare_file(p)[0] for p in paths[:args.ceiling_images]])
    ceiling, best_bs = model_ceiling(
        inputs, lambda bs: load_embedder("random", precision=args.precision, batch_size=bs),
        batch_sizes=(8, 16))
    per_core = decode_rate(paths, 1)
    in_workers = decode_rate(paths, workers) if workers > 1 else per_core
    limit = cores / (cores / ceiling + 1 / per_core)
    share = (1 / per_core) / (cores / ceiling + 1 / per_core)
    print(f"model-only ceiling: {ceiling:.1f} img/s (batch {best_bs}); decode-only: "
          f"{per_core:.1f} img/s on one core, {in_workers:.1f} img/s in {workers} process(es)")
    print(f"limit of this machine (model + decode sharing {cores} cores): {limit:.1f} img/s; "
          f"decoding's share of the CPU time per image: {share:.0%} "
          f"(= {cores * share:.2f} of {cores} cores)")
    rows = []
    for n in args.sizes:
        data = distinct_dataset(dataset, n, tmp / f"distinct-{n}")
        r = cli_run(data, tmp / f"out-{n}", tmp / f"cache-{n}", args)
        feat = r["timings"]["features"]
        rate = r["embedded"] / feat
        rows.append((n, rate, r))
        print(f"{n:>6} distinct images: embedded {r['embedded']}, features stage {feat:.0f} s = "
              f"{rate:.1f} img/s ({rate / ceiling:.0%} of the model-only ceiling, "
              f"{rate / limit:.0%} of the limit); whole run {r['wall']:.0f} s "
              f"({r['embedded'] / r['wall']:.1f} img/s); peak RSS {r['peak_mib']:.0f} MiB; "
              f"stages {r['timings']}; run {r['run']}", flush=True)
        shutil.rmtree(tmp / f"cache-{n}", ignore_errors=True)
    print("---- summary ----")
    for n, rate, r in rows:
        print(f"{n:>6}: {rate:5.1f} img/s end to end (features stage) | ceiling {ceiling:.1f} "
              f"| decode {in_workers:.1f} ({workers} proc) | limit {limit:.1f} "
              f"| {rate / limit:.0%} of limit | peak RSS {r['peak_mib']:.0f} MiB")


def memory_only(dataset: Path, tmp: Path, args) -> None:
    """--prefill: peak RSS of whole CLI runs whose every image is in the cache, per size."""
    for n in args.sizes:
        data = distinct_dataset(dataset, n, tmp / f"distinct-{n}")
        r = cli_run(data, tmp / f"out-{n}", tmp / f"cache-{n}", args)
        arrays = n * (1024 * 4 + 18 * 4) / 2**20
        print(f"{n:>6} images, all in the cache: peak RSS {r['peak_mib']:.0f} MiB (final "
              f"features + logits {arrays:.1f} MiB); whole run {r['wall']:.0f} s; stages "
              f"{r['timings']}; load average {os.getloadavg()[0]:.1f}", flush=True)
        shutil.rmtree(tmp / f"cache-{n}", ignore_errors=True)
