"""Everything that follows from map positions and metadata, in one step.

States, trajectories, the bad-state density (grid, value at each image, percentile of each image),
the per-episode summaries (the patients table) and the logit columns come from `derive`, which
precompute and benchmarks/make_artifact.py both call, so a synthetic artifact is derived exactly
as a real one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cxrviz import schema as S
from cxrviz.compute.density import BANDWIDTH, GRID_SIZE, BadStateDensity, percentile_of
from cxrviz.compute.states import assign_states
from cxrviz.compute.timeline import time_order
from cxrviz.compute.trajectories import build_trajectories

REFERENCE_REASON = "reference image (no outcome data)"


@dataclass
class Derived:
    images: pd.DataFrame  # exactly S.image_columns(pathologies), typed
    trajectories: pd.DataFrame
    patients: pd.DataFrame  # S.PATIENT_COLUMNS + S.PATIENT_FROM_COLUMNS
    density: dict  # density.npz content
    kde_params: dict


def derive(images: pd.DataFrame, coords: np.ndarray, logits: np.ndarray, pathologies,
           *, bandwidth: float = BANDWIDTH, grid_size: int = GRID_SIZE) -> Derived:
    """images: one row per embedded image (metadata columns); coords (n, 2); logits (n, k)."""
    images = images.reset_index(drop=True).copy()
    coords = np.asarray(coords, dtype=np.float32)
    images[S.X], images[S.Y] = coords[:, 0], coords[:, 1]
    is_covid = (images[S.ROLE] == S.ROLE_COHORT).to_numpy()

    states = pd.DataFrame({S.STATE: S.STATE_UNKNOWN, S.STATE_REASON: REFERENCE_REASON},
                          index=images.index)
    states.loc[is_covid] = assign_states(images[is_covid])
    images[S.STATE], images[S.STATE_REASON] = states[S.STATE], states[S.STATE_REASON]
    trajectories = build_trajectories(images[is_covid])

    bad = (images[S.STATE] == S.STATE_BAD).to_numpy()
    kde = BadStateDensity(bandwidth=bandwidth, grid_size=grid_size).fit(coords[bad])
    images[S.BAD_DENSITY], density = kde.at_map(coords)  # exact, or binned for large maps
    reference = np.sort(images.loc[is_covid, S.BAD_DENSITY].to_numpy())
    images[S.DENSITY_PERCENTILE] = percentile_of(images[S.BAD_DENSITY], reference)

    logits = np.asarray(logits, dtype=np.float32)
    for j, name in enumerate(pathologies):
        images[S.logit_column(name)] = logits[:, j]
    prefixed = [c for c in images.columns
                if c.startswith((S.CHEXPERT_PREFIX, S.EXTRA_PREFIX))]
    images = images[[*S.image_columns(pathologies), *prefixed]].astype(
        {S.OFFSET: "float64", S.AGE: "float64", S.X: "float32", S.Y: "float32",
         S.BAD_DENSITY: "float64", S.DENSITY_PERCENTILE: "float64"})
    return Derived(images, trajectories, patient_table(images), density, kde.params())


def unit_keys(frame: pd.DataFrame) -> list:
    """The patients table's unit of each row, as groupby keys: (patient, episode), the episode ""
    for an image in no episode (a MIMIC film outside every admission). One row per episode, then,
    and per patient one more for their images outside any episode; in the COVID collection an
    episode is its patient, so one row per patient."""
    return [frame[S.PATIENTID], frame[S.EPISODE].fillna("").astype(str).rename(S.EPISODE)]


def at_any_time(frame: pd.DataFrame, at_image: str, any_time: str) -> pd.DataFrame:
    """Per episode (index: patientid, episode): ICU (or intubation) at any time in it, and the
    image it was read from.

    The one rule the patients table, its CSV and the detail panel all show: Y if the episode's
    `any_time` column (went_icu / intubated; per admission where a source has events) or any
    of its images' `at_image` column (in_icu / intubation_present) says Y; N if only N is seen;
    else unknown. `from_image` is "" when the any-time column itself gives the answer, else the
    first image (time order) whose at-image value gave it, so the panel can say where a Y the
    metadata's own column lacks comes from (patient 205: `intubated` blank, intubated at days
    11-20). frame: in time order."""
    keys = unit_keys(frame)
    units = pd.MultiIndex.from_arrays(keys).unique().sort_values()
    out = pd.DataFrame(index=units)
    out["value"], out["from_image"] = S.UNKNOWN, ""
    for answer in (S.NO, S.YES):  # Y last: it wins over N
        said = (frame[any_time] == answer).groupby(keys).any()
        at = frame[at_image] == answer
        seen = frame.loc[at, S.IMAGE_ID].groupby([k[at] for k in keys]).first()
        said_units = said.index[said.to_numpy()]
        by_image = seen.index.difference(said_units)
        out.loc[said_units, ["value", "from_image"]] = [answer, ""]
        out.loc[by_image, "value"] = answer
        out.loc[by_image, "from_image"] = seen[by_image]
    return out


def patient_table(images: pd.DataFrame) -> pd.DataFrame:
    """patients.parquet: one row per episode of the cohort (a MIMIC admission, a COVID-collection
    patient), with its patient id, and one per patient for images in no episode (episode None;
    no day, survival unknown). Days, percentiles, ICU and survival are the episode's own: each
    admission has its own day 0 and outcome. Rows by patient, then episode."""
    cohort = time_order(images[images[S.ROLE] == S.ROLE_COHORT])
    keys = unit_keys(cohort)
    is_dated = cohort[S.OFFSET].notna()
    dated = cohort[is_dated]
    dkeys = [k[is_dated] for k in keys]
    groups = cohort.groupby(keys, sort=True)
    out = pd.DataFrame(index=pd.MultiIndex.from_arrays(keys).unique().sort_values())
    out[S.P_N_IMAGES] = groups.size()
    out[S.P_N_DATED] = dated.groupby(dkeys).size().reindex(out.index, fill_value=0)
    out[S.P_FIRST_DAY] = dated.groupby(dkeys)[S.OFFSET].min()
    out[S.P_LAST_DAY] = dated.groupby(dkeys)[S.OFFSET].max()
    # first / last in time order among dated images, or among all when none is dated
    use = is_dated | ~pd.MultiIndex.from_arrays(keys).isin(out.index[out[S.P_N_DATED] > 0])
    basis = cohort[use][S.DENSITY_PERCENTILE].groupby([k[use] for k in keys])
    out[S.P_FIRST_PCT] = basis.first()
    out[S.P_LAST_PCT] = basis.last()
    out[S.P_MAX_PCT] = groups[S.DENSITY_PERCENTILE].max()
    out[S.P_CHANGE_PCT] = out[S.P_LAST_PCT] - out[S.P_FIRST_PCT]
    bad = (dated[S.STATE] == S.STATE_BAD).to_numpy()
    first_bad = dated[bad].groupby([k[bad] for k in dkeys])[S.OFFSET].min()
    out[S.P_DAYS_TO_BAD] = first_bad - out[S.P_FIRST_DAY]
    for value, source, at_image, any_time in (
            (S.P_ICU, S.P_ICU_FROM, S.IN_ICU, S.WENT_ICU),
            (S.P_INTUBATED, S.P_INTUBATED_FROM, S.INTUBATION_PRESENT, S.INTUBATED)):
        ever = at_any_time(cohort, at_image, any_time)
        out[value], out[source] = ever["value"], ever["from_image"]
    for column in (S.SURVIVAL, S.CONTINENT, S.COUNTRY, S.FINDING_GROUP):
        out[column] = groups[column].last()  # the value at the episode's last image
    out = out.reset_index()
    out[S.EPISODE] = out[S.EPISODE].where(out[S.EPISODE] != "", None)
    out = out[[*S.PATIENT_COLUMNS, *S.PATIENT_FROM_COLUMNS]]
    return out.astype({S.P_N_IMAGES: "int64", S.P_N_DATED: "int64"})
