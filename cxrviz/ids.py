"""Every Dash component id, in one place (pages and tests import them from here)."""

QUERY = "query"  # dcc.Store: the query string that describes the current view
QUERY_SINK = "query-sink"  # clientside callback output (writes QUERY into the address bar)
BANNER = "banner"
ABOUT = "about"
NOTICE = "notice"  # what a URL asked for that no longer exists
MAP = "map"
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
RESET = "reset-filters"

# selection and detail
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
EXPORT_BUTTON = "export-button"  # pattern-matching type, index = format
EXPORT_DOWNLOAD = "export-download"
EXPORT_STATUS = "export-status"

# placing new images (uploads) and saliency
UPLOAD = "upload"
UPLOAD_MESSAGE = "upload-message"
UPLOADS = "uploads"  # dcc.Store: list of placed uploads
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
