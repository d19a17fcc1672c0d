"""Expected values by a second route: plain pandas on images.parquet (never the code under
test), for the figure and export tests."""
import pandas as pd

from cxrviz import schema as S


def day_after_first(images: pd.DataFrame) -> pd.Series:
    """Per image: days since its patient's first dated image (NaN: undated)."""
    dated = images[images[S.OFFSET].notna()]
    return images[S.OFFSET] - images[S.PATIENTID].map(dated.groupby(S.PATIENTID)[S.OFFSET].min())


def trajectory_edges(images: pd.DataFrame, shown: pd.Series, patients=None) -> pd.DataFrame:
    """Consecutive dated images of a patient (by offset, then filename, then id), both shown:
    (patient, a, b) with a and b row labels of `images`."""
    dated = images[images[S.OFFSET].notna()].sort_values(
        [S.PATIENTID, S.OFFSET, S.FILENAME, S.IMAGE_ID])
    row = dict(zip(images[S.IMAGE_ID], images.index))
    pairs = pd.DataFrame({"patient": dated[S.PATIENTID], "a": dated.index,
                          "b": dated.groupby(S.PATIENTID)[S.IMAGE_ID].shift(-1).map(row)})
    pairs = pairs.dropna().astype({"b": int})
    pairs = pairs[shown.loc[pairs["a"]].to_numpy() & shown.loc[pairs["b"]].to_numpy()]
    return pairs if patients is None else pairs[pairs["patient"].isin(list(patients))]
