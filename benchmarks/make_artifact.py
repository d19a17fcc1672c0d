"""A realistic synthetic artifact of N images, for measuring the app at scale.

    python benchmarks/make_artifact.py --n 30000 --out /tmp/cxrviz-30k [--from artifacts/covid]

Metadata values are drawn from a real artifact (the shared dataset's, if given) so categories,
missing values and text lengths look like the collection's; patients have 1-8 images with
increasing offsets; the map is a mixture of clusters; states, trajectories and the bad-state
density are derived by the same function precompute calls (cxrviz.compute.derive). Display images are hard links to a few
JPEGs. The manifest says `synthetic: true` and the weights are marked not pretrained.
`--no-features` writes features.npy with no columns (n x 0; 4 GB saved at 10^6 images): the
reader accepts it, and placing new images says the artifact holds no features.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cxrviz import schema as S  # noqa: E402
from cxrviz.compute.derive import derive  # noqa: E402
from cxrviz.compute.states import STATE_RULES  # noqa: E402
from cxrviz.io.artifact import read_artifact, write_artifact  # noqa: E402
from cxrviz.weights import WeightsSpec  # noqa: E402

NO_FEATURES_NOTE = ("written by benchmarks/make_artifact.py --no-features: features.npy has no "
                    "columns, so placing new images and the 1024-d evaluation are unavailable")
PATHOLOGIES = ['Atelectasis', 'Consolidation', 'Infiltration', 'Pneumothorax', 'Edema',
               'Emphysema', 'Fibrosis', 'Effusion', 'Pneumonia', 'Pleural_Thickening',
               'Cardiomegaly', 'Nodule', 'Mass', 'Hernia', 'Lung Lesion', 'Fracture',
               'Lung Opacity', 'Enlarged Cardiomediastinum']


def synthetic_images(n: int, source: pd.DataFrame, rng) -> pd.DataFrame:
    """n images of patients with 1-8 images each (geometric sizes), column-wise.

    Each patient takes its metadata from one source row (its template) and each image its ICU,
    intubation and view from another; 85% of patients have distinct increasing offsets drawn
    from days 0-39, the rest none."""
    sizes = np.minimum(rng.geometric(0.45, size=n), 8)  # more patients than needed, then cut
    sizes = sizes[:int(np.searchsorted(np.cumsum(sizes), n)) + 1]
    sizes[-1] -= int(sizes.sum()) - n
    patient = np.repeat(np.arange(1, len(sizes) + 1), sizes)  # per image: its patient (1-based)
    j = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)  # its rank within the patient
    template = np.repeat(rng.integers(len(source), size=len(sizes)), sizes)
    other = rng.integers(len(source), size=n)
    # distinct offsets per patient: the first k of a random order of days 0-39, sorted
    days = np.argsort(rng.random((len(sizes), 40), dtype=np.float32), axis=1)[:, :8]
    days = np.where(np.arange(8)[None, :] < sizes[:, None], days, 99)
    days = np.sort(days, axis=1).astype(float)
    dated = np.repeat(rng.random(len(sizes)) > 0.15, sizes)
    offsets = np.where(dated, days[patient - 1, j], np.nan)
    columns = [c for c in S.METADATA_COLUMNS if c in source.columns]
    images = source[columns].iloc[template].reset_index(drop=True)
    for column in (S.IN_ICU, S.INTUBATION_PRESENT, S.VIEW):
        images[column] = source[column].to_numpy()[other]
    pid = pd.Series(patient).astype(str)
    stem = "syn-" + pid.str.zfill(6) + "-" + pd.Series(j).astype(str)
    images[S.IMAGE_ID], images[S.FILENAME] = stem, stem + ".jpg"
    images[S.PATIENTID], images[S.OFFSET] = "s" + pid, offsets
    return images


class _Stages(dict):
    """Stage -> seconds, each printed as it is recorded (large runs take minutes)."""

    def __setitem__(self, stage, seconds):
        super().__setitem__(stage, seconds)
        print(f"  {stage}: {seconds:.1f} s", flush=True)


def synthetic_inputs(n: int, source_artifact: str | None, seed: int = 0) -> tuple:
    """(images, coords (n, 2), logits (n, 18), pathologies): what precompute hands derive()."""
    rng = np.random.default_rng(seed)
    if source_artifact:
        source = read_artifact(source_artifact).images
        source = source[source[S.SOURCE] == S.SOURCE_COVID]
    else:
        source = pd.DataFrame([{c: S.UNKNOWN for c in S.METADATA_COLUMNS} | {
            S.AGE: 60.0, S.OFFSET: 0.0, S.SOURCE: S.SOURCE_COVID, S.CLINICAL_NOTES: ""}])
    images = synthetic_images(n, source, rng)
    images[S.SOURCE] = S.SOURCE_COVID
    images[S.EPISODE], images[S.ROLE] = images[S.PATIENTID], S.ROLE_COHORT
    images[S.TIME] = pd.Series(pd.NaT, index=images.index, dtype="datetime64[ns]")
    centers = rng.normal(0, 6, size=(12, 2))
    which = rng.integers(len(centers), size=n)
    xy = (centers[which] + rng.normal(0, 1.2, size=(n, 2))).astype(np.float32)
    logits = rng.normal(0, 2, size=(n, len(PATHOLOGIES))).astype(np.float32)
    return images, xy, logits, PATHOLOGIES


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30000)
    ap.add_argument("--out", required=True)
    ap.add_argument("--from", dest="source", help="a real artifact to draw metadata from")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-features", action="store_true",
                    help="write features.npy with no columns (n x 0) instead of n x 1024 "
                         "(4 GB at 10^6): the map, filters and detail work; placing new "
                         "images and the 1024-d evaluation say the features are missing")
    args = ap.parse_args()
    took = _Stages()
    start = time.perf_counter()
    images, xy, logits, _ = synthetic_inputs(args.n, args.source, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    n = len(images)
    took["synthetic rows"] = time.perf_counter() - start
    start = time.perf_counter()
    derived = derive(images, xy, logits, PATHOLOGIES)  # exactly as precompute derives
    took["derive"] = time.perf_counter() - start
    start = time.perf_counter()

    from PIL import Image

    jpegs = []
    for k in range(8):
        buf = io.BytesIO()
        arr = (rng.random((512, 512)) * 60 + 40 * k).clip(0, 255).astype(np.uint8)
        Image.fromarray(arr).save(buf, format="JPEG", quality=80)
        jpegs.append(buf.getvalue())
    manifest = {
        S.M_SCHEMA_VERSION: S.SCHEMA_VERSION, S.M_CREATED: "synthetic", "synthetic": True,
        S.M_INPUTS: {"dataset": None, "metadata_sha256": None, "rsna": None},
        S.M_WEIGHTS: WeightsSpec(S.W_KIND_FILE, "synthetic (no network)", "0" * 64,
                                 False).to_manifest(),
        S.M_PATHOLOGIES: PATHOLOGIES, S.M_UMAP: {"synthetic": True}, S.M_KDE: derived.kde_params,
        S.M_STATE_RULES: STATE_RULES,
        S.M_COUNTS: {S.C_METADATA_ROWS: n, S.C_FRONTAL_XRAY: n, S.C_EMBEDDED_COVID: n,
                     S.C_EMBEDDED_RSNA: 0, S.C_EXCLUDED: 0, S.C_SKIPPED_COVID: 0,
                     S.C_SKIPPED: 0},
        S.M_EXCLUDED: [], S.M_SKIPPED: [], S.M_NOTES: ["synthetic artifact for benchmarks"],
        S.M_TIMINGS: {},
        S.M_VERSIONS: {},
    }
    width = 0 if args.no_features else 1024
    if args.no_features:
        manifest[S.M_NOTES].append(NO_FEATURES_NOTE)
    with tempfile.TemporaryDirectory() as tmp:
        # display images: a few real JPEG files, hard-linked per id once the folder exists
        out = write_artifact(args.out, manifest=manifest, images=derived.images,
                             trajectories=derived.trajectories, patients=derived.patients,
                             density=derived.density,
                             features=rng.standard_normal(size=(n, width), dtype=np.float32),
                             display={})
        took["write"] = time.perf_counter() - start
        start = time.perf_counter()
        for k, data in enumerate(jpegs):
            (Path(tmp) / f"{k}.jpg").write_bytes(data)
        for i, image_id in enumerate(derived.images[S.IMAGE_ID]):
            src = Path(tmp) / f"{i % len(jpegs)}.jpg"
            dst = out / S.DISPLAY_DIR / f"{image_id}{S.DISPLAY_SUFFIX}"
            try:
                os.link(src, dst)
            except OSError:
                dst.write_bytes(src.read_bytes())
        took["display links"] = time.perf_counter() - start
    print(f"wrote {out}: {n} images, {len(derived.trajectories)} trajectory edges, "
          f"{images[S.PATIENTID].nunique()} patients; density {derived.kde_params['method']}")
    print("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in took.items())
          + f"; total {sum(took.values()):.1f} s")


if __name__ == "__main__":
    main()
