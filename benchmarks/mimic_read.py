"""Reading a MIMIC-scale cohort: metadata -> rows and states, time and peak memory.

    python benchmarks/mimic_read.py [--out /tmp/cxrviz-mimic-synth] [--images 377110]

Writes (once; reused while the parameters match) a synthetic MIMIC-CXR-JPG metadata of 377,110
rows (65,379 subjects, 227,835 studies, views in MIMIC-CXR's proportions, CheXpert labels per
study) and MIMIC-IV tables at its real sizes (299,712 patients, 431,231 admissions, 73,181 ICU
stays, 696,092 procedureevents rows of which ~5% invasive ventilation), with the real column
names and formats; no images. Then, each in a fresh subprocess (its own peak RSS):
- baselines: pandas.read_csv of the metadata (every column), and of the six tables with the
  columns the reader uses (the floor: reading and nothing else);
- reader: MimicReader(...).read() -> rows with episode, day, ICU, intubation, survival (the
  file check off: there are no images), then today's cxrviz.compute.states.assign_states on them;
- file check: cxrviz.data.folder.locate on a real tree of --tree-files empty files in the MIMIC
  layout, per file, against the lexical check alone.
Prints seconds (min / median of --repeat alternated runs), peak RSS and ratios to the baselines
measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cxrviz.data import mimic as M  # noqa: E402

N_SUBJECTS, N_STUDIES, N_IMAGES = 65_379, 227_835, 377_110
N_PATIENTS, N_ADMISSIONS, N_ICU, N_PROCEDURES = 299_712, 431_231, 73_181, 696_092
VIEWS = {"AP": 0.39, "PA": 0.255, "LATERAL": 0.219, "LL": 0.093, "": 0.04, "AP AXIAL": 0.001,
         "PA LLD": 0.001, "SWIMMERS": 0.0005, "XTABLE LATERAL": 0.0005}
CHEXPERT_LABELS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema",
                   "Enlarged Cardiomediastinum", "Fracture", "Lung Lesion", "Lung Opacity",
                   "No Finding", "Pleural Effusion", "Pleural Other", "Pneumonia", "Pneumothorax",
                   "Support Devices")
ITEMS = {225792: 0.05, 225794: 0.015, 224275: 0.2, 224277: 0.15, 225459: 0.2, 221214: 0.385}
DAY = np.int64(86_400)


def _spread(total: int, n: int, mean_extra: float, rng) -> np.ndarray:
    """n counts >= 1 summing to total, geometric-like (a few heavy users)."""
    counts = rng.geometric(1 / (1 + mean_extra), n)
    diff = total - counts.sum()
    idx = rng.choice(n, abs(diff), replace=True)
    np.add.at(counts, idx, 1 if diff > 0 else -1)
    while (counts < 1).any():  # undo over-trimming
        low = np.flatnonzero(counts < 1)
        counts[low] += 1
        high = rng.choice(np.flatnonzero(counts > 1), low.size)
        np.subtract.at(counts, high, 1)
    return counts


def _stamp(seconds: np.ndarray) -> pd.Series:
    """Seconds since 2100-01-01 -> 'YYYY-MM-DD HH:MM:SS' (MIMIC-IV's form); NaN stays blank."""
    base = pd.Timestamp("2100-01-01")
    valid = ~np.isnan(seconds)
    out = pd.Series(np.nan, index=range(len(seconds)), dtype=object)
    t = base + pd.to_timedelta(seconds[valid], unit="s")
    out[valid] = t.strftime("%Y-%m-%d %H:%M:%S")
    return out


def write_synthetic(out: Path, n_images: int = N_IMAGES, seed: int = 0) -> tuple[Path, Path]:
    scale = n_images / N_IMAGES
    n_sub, n_study = int(N_SUBJECTS * scale), int(N_STUDIES * scale)
    n_pat, n_adm = int(N_PATIENTS * scale), int(N_ADMISSIONS * scale)
    n_icu, n_proc = int(N_ICU * scale), int(N_PROCEDURES * scale)
    cxr, iv = out / "mimic-cxr-jpg", out / "mimic-iv"
    marker = out / f"done-{n_images}-{seed}.json"
    if marker.is_file():
        return cxr, iv
    (iv / "hosp").mkdir(parents=True, exist_ok=True)
    (iv / "icu").mkdir(parents=True, exist_ok=True)
    cxr.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    subjects = 10_000_000 + rng.choice(9_999_999, n_pat, replace=False)
    anchor_year = rng.integers(2110, 2190, n_pat)
    pd.DataFrame({"subject_id": subjects, "gender": rng.choice(["F", "M"], n_pat),
                  "anchor_age": rng.integers(18, 92, n_pat), "anchor_year": anchor_year,
                  "anchor_year_group": "2011 - 2013", "dod": np.nan}).to_csv(
        iv / "hosp" / "patients.csv.gz", index=False)
    origin = (anchor_year - 2100) * 365 * DAY  # each patient's shifted calendar

    # admissions: CXR subjects (the first n_sub) are the heavier users
    weights = np.where(np.arange(n_pat) < n_sub, 3.5, 1.0)
    owner = rng.choice(n_pat, n_adm, p=weights / weights.sum())
    owner.sort()
    rank = pd.Series(owner).groupby(owner).cumcount().to_numpy()
    gap = rng.exponential(200, n_adm) * DAY
    start = origin[owner] + pd.Series(gap).groupby(owner).cumsum().to_numpy() + rank * 30 * DAY
    length = (0.5 + rng.exponential(5, n_adm)) * DAY
    end = start + length
    ed = np.where(rng.random(n_adm) < 0.6, start - rng.uniform(1, 10, n_adm) * 3600, np.nan)
    last = np.r_[owner[1:] != owner[:-1], True]
    death = np.where(last & (rng.random(n_adm) < 0.08), end, np.nan)
    hadm = 20_000_000 + rng.choice(9_999_999, n_adm, replace=False)
    pd.DataFrame({"subject_id": subjects[owner], "hadm_id": hadm, "admittime": _stamp(start),
                  "dischtime": _stamp(end), "deathtime": _stamp(death),
                  "admission_type": "EW EMER.", "admit_provider_id": "P12345",
                  "admission_location": "EMERGENCY ROOM", "discharge_location": "HOME",
                  "insurance": "Other", "language": "ENGLISH", "marital_status": "SINGLE",
                  "race": "WHITE", "edregtime": _stamp(ed), "edouttime": _stamp(ed + 3600),
                  "hospital_expire_flag": (~np.isnan(death)).astype(int)}).to_csv(
        iv / "hosp" / "admissions.csv.gz", index=False)

    stay_adm = rng.choice(n_adm, n_icu, replace=False)
    intime = start[stay_adm] + rng.uniform(0, 0.3, n_icu) * length[stay_adm]
    outtime = intime + rng.uniform(0.2, 0.6, n_icu) * length[stay_adm]
    stay = 30_000_000 + np.arange(n_icu)
    pd.DataFrame({"subject_id": subjects[owner[stay_adm]], "hadm_id": hadm[stay_adm],
                  "stay_id": stay, "first_careunit": "Medical Intensive Care Unit (MICU)",
                  "last_careunit": "Medical Intensive Care Unit (MICU)",
                  "intime": _stamp(intime), "outtime": _stamp(outtime),
                  "los": (outtime - intime) / DAY}).to_csv(iv / "icu" / "icustays.csv.gz",
                                                           index=False)
    which = rng.choice(n_icu, n_proc)
    items = rng.choice(list(ITEMS), n_proc, p=list(ITEMS.values()))
    p_start = intime[which] + rng.uniform(0, 0.5, n_proc) * (outtime - intime)[which]
    p_end = p_start + rng.uniform(0.1, 0.5, n_proc) * (outtime - intime)[which]
    pd.DataFrame({"subject_id": subjects[owner[stay_adm[which]]], "hadm_id": hadm[stay_adm[which]],
                  "stay_id": stay[which], "caregiver_id": 1234, "starttime": _stamp(p_start),
                  "endtime": _stamp(p_end), "storetime": _stamp(p_end), "itemid": items,
                  "value": 1, "valueuom": "None", "location": np.nan, "locationcategory": np.nan,
                  "orderid": np.arange(n_proc), "linkorderid": np.arange(n_proc),
                  "ordercategoryname": "Ventilation", "ordercategorydescription": "Task",
                  "patientweight": 80.0, "isopenbag": 0, "continueinnextdept": 0,
                  "statusdescription": "FinishedRunning", "originalamount": 1,
                  "originalrate": 1}).to_csv(iv / "icu" / "procedureevents.csv.gz", index=False)

    # studies: 60% inside one of the subject's admissions (ED or ward), the rest outpatient
    per_subject = _spread(n_study, n_sub, N_STUDIES / N_SUBJECTS - 1, rng)
    study_subject = np.repeat(np.arange(n_sub), per_subject)
    first_adm = np.searchsorted(owner, np.arange(n_pat))
    n_own = np.bincount(owner, minlength=n_pat)
    inside = (rng.random(n_study) < 0.6) & (n_own[study_subject] > 0)
    pick = first_adm[study_subject] + (rng.random(n_study) * np.maximum(n_own[study_subject], 1)
                                       ).astype(int)
    pick = np.minimum(pick, n_adm - 1)
    w0 = np.where(np.isnan(ed[pick]), start[pick], np.fmin(ed[pick], start[pick]))
    t_in = w0 + rng.random(n_study) * (end[pick] - w0)
    t_out = origin[study_subject] + rng.uniform(0, 3000, n_study) * DAY
    t_study = np.where(inside, t_in, t_out).astype(np.int64)
    study_id = 50_000_000 + rng.choice(9_999_999, n_study, replace=False)

    per_study = _spread(n_images, n_study, N_IMAGES / N_STUDIES - 1, rng)
    img_study = np.repeat(np.arange(n_study), per_study)
    when = pd.Timestamp("2100-01-01") + pd.to_timedelta(t_study[img_study], unit="s")
    words = rng.integers(0, 2**32, (n_images, 5), dtype=np.uint64)
    dicom = pd.Series(["-".join(f"{w:08x}" for w in row) for row in words])
    frac = rng.integers(0, 1000, n_images) / 1000
    study_time = (when.hour * 10_000 + when.minute * 100 + when.second).to_numpy() + frac
    pd.DataFrame({"dicom_id": dicom, "subject_id": subjects[study_subject[img_study]],
                  "study_id": study_id[img_study],
                  "PerformedProcedureStepDescription": "CHEST (PA AND LAT)",
                  "ViewPosition": rng.choice(list(VIEWS), n_images, p=list(VIEWS.values())),
                  "Rows": 3056, "Columns": 2544, "StudyDate": when.strftime("%Y%m%d"),
                  "StudyTime": study_time,
                  "ProcedureCodeSequence_CodeMeaning": "CHEST (PA AND LAT)",
                  "ViewCodeSequence_CodeMeaning": "postero-anterior",
                  "PatientOrientationCodeSequence_CodeMeaning": "Erect"}).to_csv(
        cxr / f"{M.METADATA}.csv.gz", index=False)
    codes = rng.choice([1.0, 0.0, -1.0, np.nan], (n_study, len(CHEXPERT_LABELS)),
                       p=[0.15, 0.1, 0.05, 0.7])
    labels = pd.DataFrame(codes, columns=list(CHEXPERT_LABELS))
    labels.insert(0, "study_id", study_id)
    labels.insert(0, "subject_id", subjects[study_subject])
    labels.to_csv(cxr / f"{M.CHEXPERT}.csv.gz", index=False)
    marker.write_text(json.dumps({"images": n_images, "seed": seed}))
    return cxr, iv


USED = {  # the columns MimicReader reads, per table
    f"mimic-cxr-jpg/{M.METADATA}.csv.gz": ["dicom_id", "subject_id", "study_id", "ViewPosition",
                                           "StudyDate", "StudyTime"],
    f"mimic-cxr-jpg/{M.CHEXPERT}.csv.gz": None,
    "mimic-iv/hosp/patients.csv.gz": ["subject_id", "gender", "anchor_age", "anchor_year"],
    "mimic-iv/hosp/admissions.csv.gz": ["subject_id", "hadm_id", "admittime", "dischtime",
                                        "deathtime", "edregtime"],
    "mimic-iv/icu/icustays.csv.gz": ["subject_id", "hadm_id", "intime", "outtime"],
    "mimic-iv/icu/procedureevents.csv.gz": ["subject_id", "hadm_id", "starttime", "endtime",
                                            "itemid"],
}


def _child_baseline(out: str, everything: bool) -> dict:
    """pandas.read_csv of the metadata alone, or of every table with the columns the reader
    uses (the floor: reading, nothing else)."""
    t = time.perf_counter()
    names = list(USED) if everything else list(USED)[:1]
    rows = sum(len(pd.read_csv(Path(out) / n, usecols=USED[n] if everything else None))
               for n in names)
    return {"seconds": time.perf_counter() - t, "rows": rows}


def _child_reader(cxr: str, iv: str) -> dict:
    from cxrviz.compute.states import assign_states
    from cxrviz.data.mimic import MimicReader
    from cxrviz import schema as S

    t = time.perf_counter()
    rows = MimicReader(cxr, iv, check_files=False).read()
    read_s = time.perf_counter() - t
    t = time.perf_counter()
    states = assign_states(rows.frame)
    states_s = time.perf_counter() - t
    f = rows.frame
    return {"seconds": read_s, "states_seconds": states_s, **rows.counts(),
            "episodes": int(f[S.EPISODE].nunique()),
            "in_no_admission": int(f[S.EPISODE].isna().sum()),
            "in_icu_Y": int((f[S.IN_ICU] == S.YES).sum()),
            "intubation_Y": int((f[S.INTUBATION_PRESENT] == S.YES).sum()),
            "survival_N": int((f[S.SURVIVAL] == S.NO).sum()),
            "bad_states": int((states[S.STATE] == S.STATE_BAD).sum()),
            "frame_mib": f.memory_usage(deep=True).sum() / 2**20}


def _child_files(tree: str, n: int) -> dict:
    from cxrviz.data.folder import locate

    files = pd.read_csv(Path(tree) / "files.csv")["file"]
    t = time.perf_counter()
    lexical, _ = locate(tree, files, walk=False)
    lex_s = time.perf_counter() - t
    t = time.perf_counter()
    reasons, _ = locate(tree, files)
    walk_s = time.perf_counter() - t
    return {"seconds": walk_s, "lexical_seconds": lex_s, "files": len(files),
            "found": int((reasons == "").sum())}


def _make_tree(tree: Path, cxr: Path, n: int) -> None:
    """The first n metadata rows' files as empty files in the MIMIC layout (a real tree)."""
    if (tree / "files.csv").is_file():
        return
    meta = pd.read_csv(cxr / f"{M.METADATA}.csv.gz", nrows=n, dtype=str)
    files = ("files/p" + meta["subject_id"].str[:2] + "/p" + meta["subject_id"] + "/s"
             + meta["study_id"] + "/" + meta["dicom_id"] + ".jpg")
    for rel in files:  # building the benchmark's input, not the code under test
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    files.to_frame("file").to_csv(tree / "files.csv", index=False)


def _run(kind: str, *args) -> dict:
    code = (f"import json, resource, sys; sys.path.insert(0, {str(ROOT)!r}); "
            f"from benchmarks.mimic_read import _child_{kind} as f; "
            f"r = f(*{list(args)!r}); "
            "r['peak_rss_mib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024; "
            "print(json.dumps(r))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="/tmp/cxrviz-mimic-synth")
    p.add_argument("--images", type=int, default=N_IMAGES)
    p.add_argument("--tree-files", type=int, default=20_000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    out = Path(args.out)
    t = time.perf_counter()
    cxr, iv = write_synthetic(out, args.images)
    print(f"synthetic MIMIC-layout tables in {out} ({time.perf_counter() - t:.1f} s to "
          f"write or find): " + ", ".join(f"{f.relative_to(out)} {f.stat().st_size / 2**20:.1f}"
                                           f" MiB" for f in sorted(out.rglob("*.csv.gz"))))
    runs = {"meta": [], "all": [], "reader": []}
    for _ in range(args.repeat):  # alternated: this machine's load drifts
        runs["meta"].append(_run("baseline", str(out), False))
        runs["all"].append(_run("baseline", str(out), True))
        runs["reader"].append(_run("reader", str(cxr), str(iv)))

    def spread(kind, key="seconds"):
        values = sorted(r[key] for r in runs[kind])
        return values[0], values[len(values) // 2]

    meta, floor, reader = (spread(k) for k in ("meta", "all", "reader"))
    rss = {k: spread(k, "peak_rss_mib") for k in runs}
    r = runs["reader"][0]
    print(f"{args.repeat} runs each, min / median:")
    print(f"baseline pandas.read_csv(metadata, all columns): {meta[0]:.2f} / {meta[1]:.2f} s, "
          f"peak RSS {rss['meta'][0]:.0f} MiB ({runs['meta'][0]['rows']:,} rows)")
    print(f"floor: pandas.read_csv of the six tables, the reader's columns: {floor[0]:.2f} / "
          f"{floor[1]:.2f} s, peak RSS {rss['all'][0]:.0f} MiB")
    print(f"MimicReader.read (rows + episodes + states, files not checked): {reader[0]:.2f} / "
          f"{reader[1]:.2f} s ({reader[1] / meta[1]:.1f}x the metadata read, "
          f"{reader[1] / floor[1]:.1f}x the floor, medians), peak RSS {rss['reader'][0]:.0f} MiB "
          f"({rss['reader'][0] / rss['meta'][0]:.1f}x the metadata read); frame "
          f"{r['frame_mib']:.0f} MiB (pandas deep count, shared strings counted per row)")
    print(f"  rows {r['rows']:,} = candidates {r['candidate']:,} + excluded "
          f"{r['excluded']:,} + skipped {r['skipped']:,}; episodes "
          f"{r['episodes']:,}; in no admission {r['in_no_admission']:,}; in ICU "
          f"{r['in_icu_Y']:,}; intubated {r['intubation_Y']:,}; episode died "
          f"{r['survival_N']:,}")
    states = sorted(x["states_seconds"] for x in runs["reader"])
    print(f"today's assign_states on those rows (a Python loop per row, grouped by patient): "
          f"{states[0]:.2f} / {states[len(states) // 2]:.2f} s ({r['bad_states']:,} bad)")
    tree = Path(f"{out}-tree-{args.tree_files}")
    _make_tree(tree, cxr, args.tree_files)
    checks = sorted((_run("files", str(tree), args.tree_files) for _ in range(args.repeat)),
                    key=lambda x: x["seconds"])
    files, median = checks[0], checks[len(checks) // 2]
    per_file = median["seconds"] / files["files"] * 1e6
    print(f"file check (folder.locate) on a real tree of {files['files']:,} empty files in the "
          f"MIMIC layout: {files['seconds']:.2f} / {median['seconds']:.2f} s "
          f"({per_file:.0f} us per file, median; the lexical part alone "
          f"{median['lexical_seconds']:.2f} s); {files['found']:,} found; at 377,110 files "
          f"~{per_file * N_IMAGES / 1e6:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
