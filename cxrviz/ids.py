"""Every Dash component id, in one place (pages and tests import them from here)."""

QUERY = "query"  # dcc.Store: the query string that describes the current view
QUERY_SINK = "query-sink"  # clientside callback output (writes QUERY into the address bar)
BANNER = "banner"
ABOUT = "about"
DATA_USE = "data-use"  # the About box's note on credentialed data (MIMIC)
NOTICE = "notice"  # what a URL asked for that no longer exists
MAP = "map"  # the map: a WebGL (deck.gl) view drawn by frontend/, built into assets/map/
MAP_CLICK = "map-click"  # dcc.Store: {image_id, n} of the point last clicked on the map
MAP_SELECTION = "map-selection"  # dcc.Store: {polygon, query} of the box / lasso, or None
MAP_SINK = "map-sink"  # clientside callback output (hands view changes to the WebGL map)
LEGEND = "map-legend"
LEGEND_ITEM = "legend-item"  # pattern-matching type, index = colour code
COUNT = "count"

# controls
COLOR_BY = "color-by"
SHOW = "show-layers"  # checklist: density, trajectories, rsna
DENSITY_STYLE = "density-style"
DENSITY_OPACITY = "density-opacity"
FILTERED_MODE = "filtered-mode"  # hide | dim
F_CONTINENT = "f-continent"
F_SUBREGION = "f-subregion"
F_COUNTRY = "f-country"
F_VIEW = "f-view"
F_FINDING = "f-finding-group"
F_SEX = "f-sex"
F_AGE = "f-age"
F_SURVIVAL = "f-survival"
F_ICU = "f-icu"
F_INTUBATION = "f-intubation"
F_STATE = "f-state"
F_MIN_IMAGES = "f-min-images"
F_PATIENT = "f-patient"
F_CHEXPERT = "f-chexpert"
RESET = "reset-filters"
CHIPS = "filter-chips"
CHIP = "filter-chip"  # pattern-matching type, index = filter key

# time: the map's second axis
ALIGN = "align"
DAY_RANGE = "day-range"
PLAY = "play"
PLAY_TICK = "play-tick"
PLAY_MODE = "play-mode"  # grow | window
PLAY_WINDOW = "play-window"  # window width, days
PLAY_SPEED = "play-speed"  # ms per frame
TIME_NOTE = "time-note"
TIME_DATA = "time-data"  # dcc.Store: what playback needs (day ends, default scope)
TIME_QUERY = "time-query"  # dcc.Store: the URL's time part, encoded in the browser (url_spec)
PLAY_RANGE = "play-range"  # dcc.Store: the day range Play runs through
TRAJ_SCOPE = "trajectory-scope"  # all | selected | selection | ids
TRAJ_IDS = "trajectory-ids"
HIDDEN_CATS = "hidden-categories"  # dcc.Store: colour categories hidden from the legend

# below the map
TABS = "below-tabs"
COHORT = "cohort"
COHORT_GRAPH = "cohort-graph"
TABLE = "patients-table"
TABLE_DOWNLOAD = "patients-download"
TABLE_SIDECAR = "patients-sidecar"
TABLE_CSV = "patients-csv"
SERIES = "patient-series"  # the box the series chart is mounted in once a patient is selected
SERIES_GRAPH = "patient-series-graph"  # the chart: {"type": SERIES_GRAPH, "index": 0}
SERIES_OUTPUTS = "series-outputs"

# selection and detail
CLEAR = "clear-selection"
GOTO = "goto"
GOTO_MESSAGE = "goto-message"
STEP = "timeline-step"  # pattern-matching type, index = -1 (previous) or 1 (next)
SELECTED = "selected-image"  # dcc.Store: image_id or None
DETAIL = "detail"
DETAIL_IMAGE = "detail-image"
DETAIL_OUTPUTS = "detail-outputs"
TIMELINE = "timeline"
TIMELINE_THUMB = "timeline-thumb"  # pattern-matching type
SELECTION_SUMMARY = "selection-summary"

# export
EXPORT_PRESET = "export-preset"
EXPORT_SCOPE = "export-scope"
EXPORT_CAPTION = "export-caption"
EXPORT_COMMAND = "export-command"  # the figure command for the current view
EXPORT_VIEW = "export-view"  # dcc.Store: the page's time / selection / legend state, on the export tab
EXPORT_SIDECAR = "export-sidecar"  # dcc.Download: a CSV's provenance JSON
EXPORT_BUTTON = "export-button"  # pattern-matching type, index = format
EXPORT_DOWNLOAD = "export-download"
EXPORT_STATUS = "export-status"

# placing new images (uploads) and saliency
UPLOAD = "upload"
UPLOAD_MESSAGE = "upload-message"
UPLOADS = "uploads"  # dcc.Store: list of placed uploads
UPLOADS_PENDING = "uploads-pending"  # dcc.Store: how many uploads the server holds waiting
UPLOAD_SESSION = "upload-session"  # dcc.Store: the page's random id for its waiting uploads
UPLOAD_ZONE = "upload-zone"  # wraps UPLOAD; carries the limits assets/uploads.js checks
UPLOAD_REJECTED = "upload-rejected"  # dcc.Store: a file the browser refused (set by uploads.js)
UPLOAD_PANEL = "upload-panel"
UPLOAD_CLEAR = "upload-clear"
UPLOAD_K = "upload-k"
UPLOAD_SPACE = "upload-space"
MODEL_STATUS = "model-status"
MODEL_POLL = "model-poll"
NEIGHBOUR = "neighbour"  # pattern-matching type, index = image_id
SALIENCY_OUTPUT = "saliency-output"
SALIENCY_BUTTON = "saliency-button"
SALIENCY_VIEW = "saliency-view"
UPLOAD_SALIENCY = "upload-saliency"  # pattern-matching type, index = upload number
UPLOAD_SALIENCY_OUTPUT = "upload-saliency-output"
UPLOAD_SALIENCY_VIEW = "upload-saliency-view"

# evaluation page
EVAL_TASK = "eval-task"
EVAL_FEATURES = "eval-features"
EVAL_ROC = "eval-roc"
EVAL_SPLITS = "eval-splits"
EVAL_SCHEME = "eval-scheme"  # the paragraph naming the split scheme
NAV = "nav"
