"""Every name shared by precompute and the app: columns, files and manifest keys.

The artifact is the contract between the two halves of cxrviz, so its vocabulary lives here and
nowhere else. Bump SCHEMA_VERSION when a reader of an older artifact would misread a newer one.
"""

SCHEMA_VERSION = 3  # 3: images.parquet gains episode, time and role; patients.parquet is per
#   episode (an episode column after patientid)

# Bump when anything between the image file and the model input changes (decoding, normalisation,
# crop, resize): cached per-image results keyed by an older version are then recomputed.
PREPROCESS_VERSION = "xrv-224-v1"

# ---- files inside an artifact directory -------------------------------------------------------
MANIFEST_FILE = "manifest.json"
IMAGES_FILE = "images.parquet"
TRAJECTORIES_FILE = "trajectories.parquet"
PATIENTS_FILE = "patients.parquet"
# evaluation/ (python -m precompute.evaluate; optional, written after the artifact)
EVAL_DIR = "evaluation"
EVAL_SUMMARY, EVAL_SPLITS = "summary.csv", "splits.csv"
EVAL_FOLDS, EVAL_PREDICTIONS, EVAL_INFO = "folds.parquet", "predictions.parquet", "evaluation.json"
DENSITY_FILE = "density.npz"
FEATURES_FILE = "features.npy"
UMAP_FILE = "umap.joblib"  # a pickled reducer, in artifacts written before #14: never opened
DISPLAY_DIR = "display"
DISPLAY_SUFFIX = ".jpg"
DISPLAY_MAX_SIDE = 512  # the display JPEGs' long side by default (--display-size)
DISPLAY_NONE = "none"  # --display none: no JPEGs; the app renders the source image on a click
# written instead of display/ by --display none: per image its source and its file relative to
# that source's folder (manifest "sources"), so the app can find it inside the folder
DISPLAY_SOURCES_FILE = "display_sources.parquet"

# ---- sources ------------------------------------------------------------------------------------
SOURCE_COVID = "covid"
SOURCE_RSNA = "rsna"
SOURCE_MIMIC = "mimic"
SOURCE_COHORT = "cohort"
# A source's role, kept apart from its name: a cohort has patients, episodes, time and states and
# is drawn with trajectories; a reference is a background cloud.
ROLE = "role"
ROLE_COHORT, ROLE_REFERENCE = "cohort", "reference"
ROLES = (ROLE_COHORT, ROLE_REFERENCE)

# ---- images.parquet columns ---------------------------------------------------------------------
IMAGE_ID = "image_id"
SOURCE = "source"
FILENAME = "filename"
PATIENTID = "patientid"
OFFSET = "offset"
VIEW = "view"
SEX = "sex"
AGE = "age"
FINDING = "finding"
FINDING_GROUP = "finding_group"
SURVIVAL = "survival"
INTUBATED = "intubated"
INTUBATION_PRESENT = "intubation_present"
WENT_ICU = "went_icu"
IN_ICU = "in_icu"
LOCATION = "location"
COUNTRY = "country"
SUBREGION = "subregion"
CONTINENT = "continent"
DOI = "doi"
URL = "url"
LICENSE = "license"
CLINICAL_NOTES = "clinical_notes"
STATE = "state"
STATE_REASON = "state_reason"
BAD_DENSITY = "bad_density"
DENSITY_PERCENTILE = "density_percentile"  # % of the collection's images at or below this density
X = "x"
Y = "y"
LOGIT_PREFIX = "logit:"
# Episodes and time (every reader fills them; in images.parquet after METADATA_COLUMNS, with
# ROLE). An episode is the unit a trajectory is drawn for (a patient in the
# COVID collection, an admission in MIMIC or a hospital's export); missing for an image in no
# episode. TIME is the image's date-time on the source's clock (NaT where the source has none).
# OFFSET stays "the day": fractional days since the episode's day 0.
EPISODE = "episode"
TIME = "time"
EPISODE_COLUMNS = (EPISODE, TIME)
# The file to decode: FILE as the source names it, relative to the dataset folder (may go into an
# artifact); PATH the same file as an absolute path, checked to resolve inside the folder
# (precompute only, never written into an artifact).
FILE = "file"
PATH = "path"
# MIMIC-CXR's CheXpert labels, one column per label: 1 positive, 0 negative, -1 uncertain,
# NaN not mentioned (as mimic-cxr-2.0.0-chexpert.csv.gz codes them).
CHEXPERT_PREFIX = "chexpert:"
# Other columns of a hospital's images.csv, kept for the detail panel.
EXTRA_PREFIX = "extra:"

# Y/N columns of the covid metadata, normalised to YES / NO / UNKNOWN.
YES, NO, UNKNOWN = "Y", "N", "unknown"
YN_COLUMNS = (SURVIVAL, INTUBATED, INTUBATION_PRESENT, WENT_ICU, IN_ICU)

METADATA_COLUMNS = (
    IMAGE_ID, SOURCE, FILENAME, PATIENTID, OFFSET, VIEW, SEX, AGE, FINDING, FINDING_GROUP,
    SURVIVAL, INTUBATED, INTUBATION_PRESENT, WENT_ICU, IN_ICU, LOCATION, COUNTRY, SUBREGION,
    CONTINENT, DOI, URL, LICENSE, CLINICAL_NOTES,
)
DERIVED_COLUMNS = (STATE, STATE_REASON, BAD_DENSITY, DENSITY_PERCENTILE, X, Y)


def logit_column(pathology: str) -> str:
    return f"{LOGIT_PREFIX}{pathology}"


def chexpert_column(label: str) -> str:
    return f"{CHEXPERT_PREFIX}{label}"


def image_columns(pathologies) -> list:
    """All columns of images.parquet, in order (a source's prefixed columns, CHEXPERT_PREFIX /
    EXTRA_PREFIX, may follow)."""
    return [*METADATA_COLUMNS, *EPISODE_COLUMNS, ROLE, *DERIVED_COLUMNS,
            *(logit_column(p) for p in pathologies)]


# ---- views --------------------------------------------------------------------------------------
# Frontal views as torchxrayvision's COVID19_Dataset names them (its `views` argument).
VIEW_PA, VIEW_AP, VIEW_AP_SUPINE = "PA", "AP", "AP Supine"
VIEW_AP_SEMI_ERECT, VIEW_AP_ERECT = "AP semi erect", "AP erect"
FRONTAL_VIEWS = (VIEW_PA, VIEW_AP, VIEW_AP_SUPINE, VIEW_AP_SEMI_ERECT, VIEW_AP_ERECT)
VIEW_LATERAL = "L"

# ---- finding groups -----------------------------------------------------------------------------
FINDING_GROUPS = (
    "COVID-19", "other viral", "bacterial", "fungal", "lipoid", "aspiration", "no finding",
    "unknown",
)

# ---- states -------------------------------------------------------------------------------------
STATE_GOOD, STATE_BAD, STATE_UNKNOWN = "good", "bad", "unknown"
STATES = (STATE_GOOD, STATE_BAD, STATE_UNKNOWN)

# ---- trajectories.parquet columns ---------------------------------------------------------------
FROM_IMAGE_ID = "from_image_id"
TO_IMAGE_ID = "to_image_id"
FROM_OFFSET = "from_offset"
TO_OFFSET = "to_offset"
TO_STATE = "to_state"
TRAJECTORY_COLUMNS = (PATIENTID, EPISODE, FROM_IMAGE_ID, TO_IMAGE_ID, FROM_OFFSET, TO_OFFSET, TO_STATE,
                      SURVIVAL)

# ---- patients.parquet columns (one row per episode of the cohort) ------------------------------
# An episode (a MIMIC admission; a patient in the COVID collection) with its patient id; a
# patient's images in no episode make one more row with EPISODE None. Days are the reported
# offset (the episode's day); percentiles are the images' density percentiles. "first" and "last"
# are in time order among the episode's dated images (all images if none is dated).
P_N_IMAGES = "n_images"
P_N_DATED = "n_dated"
P_FIRST_DAY = "first_day"
P_LAST_DAY = "last_day"
P_FIRST_PCT = "first_percentile"
P_LAST_PCT = "last_percentile"
P_MAX_PCT = "max_percentile"
P_CHANGE_PCT = "change_percentile"  # last - first
P_DAYS_TO_BAD = "days_to_first_bad"  # first dated bad-state image - first dated image; NaN if none
P_ICU = "icu"  # Y if in ICU at any image or went_icu Y; N if only N seen; else unknown
P_INTUBATED = "intubated"  # the same for intubation (intubation_present, intubated)
PATIENT_COLUMNS = (PATIENTID, EPISODE, P_N_IMAGES, P_N_DATED, P_FIRST_DAY, P_LAST_DAY,
                   P_FIRST_PCT, P_LAST_PCT, P_MAX_PCT, P_CHANGE_PCT, P_DAYS_TO_BAD, P_ICU, P_INTUBATED,
                   SURVIVAL, CONTINENT, COUNTRY, FINDING_GROUP)
# Where icu / intubated come from: "" when the patient's went_icu / intubated column says so,
# else the image_id whose in_icu / intubation_present did (compute.derive.at_any_time). Also in
# patients.parquet, after PATIENT_COLUMNS; the detail panel says it in words.
P_ICU_FROM = "icu_from_image"
P_INTUBATED_FROM = "intubated_from_image"
PATIENT_FROM_COLUMNS = (P_ICU_FROM, P_INTUBATED_FROM)

# ---- density.npz keys ---------------------------------------------------------------------------
# The grid drawn behind the map, and the density itself (the bad-state points and the bandwidth
# it was fitted with), so placement scores a new point against exactly this density.
DENSITY_X, DENSITY_Y, DENSITY_Z = "x", "y", "z"
DENSITY_BAD_XY, DENSITY_BANDWIDTH = "bad_xy", "bandwidth"

# ---- manifest.json keys -------------------------------------------------------------------------
M_SCHEMA_VERSION = "schema_version"
M_CREATED = "created"
M_INPUTS = "inputs"
M_WEIGHTS = "weights"
M_PATHOLOGIES = "pathologies"
M_UMAP = "umap"
M_KDE = "kde"
M_STATE_RULES = "state_rules"
M_COUNTS = "counts"
M_SKIPPED = "skipped"
M_EXCLUDED = "excluded"  # metadata rows not on the map by design, grouped by reason
M_TIMINGS = "timings"
M_VERSIONS = "versions"
M_PREPROCESS = "preprocess"
M_NOTES = "notes"
M_MADE_UNKNOWN = "made_unknown"  # metadata values read as unknown (empty patient id, 1e9 days)
M_FILES = "files"
# how the run stored images and features (absent in artifacts before #16: display JPEGs at
# DISPLAY_MAX_SIDE, features float32)
M_DISPLAY = "display"  # {DISPLAY_SIZE: int, or None for --display none}
DISPLAY_SIZE = "size"
M_FEATURES_DTYPE = "features_dtype"  # "float32" | "float16"
FEATURES_DTYPES = ("float32", "float16")
M_DEVICE = "device"  # where the run embedded: {"device": "cuda:0", "name": "NVIDIA H200", ...}

# manifest["umap"]: the fit's parameters (umap.UMAP's own names: n_neighbors, min_dist, a, b,
# transform_seed, ...) and which rows of images.parquet the UMAP was fitted on; placement
# transforms new images against those rows' logits and positions.
U_FIT_ROWS, U_N_FIT = "fit_rows", "n_fit"
U_FIT_ALL = "all"  # every row of images.parquet
# Beyond a size (or with --umap-fit-sample N) UMAP is fitted on a seeded sample and the other
# rows are placed by its transform: fit_rows is then UMAP_FIT, the images.parquet column (bool,
# only written then) that marks the fit set; the manifest says how it was drawn.
UMAP_FIT = "umap_fit"
U_FIT_ALL_MAX, U_FIT_SAMPLE = "fit_all_max", "fit_sample_requested"
U_SAMPLE_SEED, U_N_TRANSFORMED = "fit_sample_seed", "n_transformed"

# manifest["weights"]: the typed weights spec (cxrviz.weights.WeightsSpec writes and reads it)
W_KIND, W_NAME, W_SEED, W_SHA256 = "kind", "name", "seed", "sha256"
W_PRECISION, W_BATCH_SIZE, W_PRETRAINED, W_PATH = "precision", "batch_size", "pretrained", "path"
W_DEVICE = "device"  # the device class the outputs were computed on: cpu | cuda | mps
W_KIND_RELEASE, W_KIND_FILE, W_KIND_RANDOM = "release", "file", "random"
W_KINDS = (W_KIND_RELEASE, W_KIND_FILE, W_KIND_RANDOM)

# manifest["counts"]: embedded_covid + excluded + skipped_covid == metadata_rows
C_METADATA_ROWS = "metadata_rows"
C_FRONTAL_XRAY = "frontal_xray"
C_EMBEDDED_COVID = "embedded_covid"
C_EMBEDDED_RSNA = "embedded_rsna"
C_EXCLUDED = "excluded"
C_SKIPPED = "skipped"
C_SKIPPED_COVID = "skipped_covid"
# (the *_covid keys count the map's cohort source, whatever its name; M_SOURCES has every one)

# manifest["sources"]: one entry per source read, in order (cohort first), so that
# embedded + excluded + skipped == rows holds for each and the app can say so per source.
M_SOURCES = "sources"
SRC_NAME, SRC_KIND, SRC_ROLE, SRC_PATH, SRC_ROWS = "name", "kind", "role", "path", "rows"
SRC_EMBEDDED, SRC_EXCLUDED, SRC_SKIPPED = "embedded", "excluded", "skipped"
SRC_PROVIDED, SRC_INPUTS = "provided", "inputs"

# manifest["excluded"] groups and manifest["skipped"] entries
E_REASON, E_RAW_VALUE, E_COUNT, E_FILENAMES = "reason", "raw_value", "count", "filenames"
E_COLUMN = "column"  # manifest["made_unknown"] groups: the metadata column the value was in
EXCLUDED_NOT_XRAY = "not an X-ray"
EXCLUDED_LATERAL = "lateral view"
EXCLUDED_NO_VIEW = "view missing or unreadable"
EXCLUDED_LIMIT = "beyond --limit"
EXCLUDED_NOT_FRONTAL = "not a frontal view"
SKIPPED_OUTSIDE = "outside the dataset folder"
SKIPPED_NO_FILE = "no image file named"
SKIPPED_BAD_IDS = "unreadable subject_id, study_id or dicom_id"
SKIPPED_NOT_FOUND = "image file not found (listed in the metadata, absent from the folder)"

# A reader's account of every input row (cxrviz.data.base.Rows.account): one row per input row
# that is not a candidate for embedding, with its row number in the input file (0 = the first
# row under the header, so its line in a CSV is row + 2).
A_ROW = "row"
A_OUTCOME = "outcome"
OUTCOME_CANDIDATE, OUTCOME_EXCLUDED, OUTCOME_SKIPPED = "candidate", "excluded", "skipped"

# ---- events (cxrviz.data.events; a hospital's events.csv names them this way) --------------
EVENT_ADMISSION, EVENT_ICU, EVENT_VENTILATION, EVENT_DEATH = (
    "admission", "icu", "ventilation", "death")
EVENT_KINDS = (EVENT_ADMISSION, EVENT_ICU, EVENT_VENTILATION, EVENT_DEATH)
