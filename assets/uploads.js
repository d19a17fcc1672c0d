/* A file the upload zone refuses in the browser (not a PNG / JPEG / DICOM, or over the size
 * limit) never reaches the server, and dcc.Upload drops it without a word. This notices such
 * files where dcc.Upload does (a file chosen or dropped on the zone), by the same rules (the
 * zone's accepted types and size limit, written into the page by cxrviz/pages/map/uploads.py as
 * data-upload-limits), and tells the page which file and why (the server words the message).
 */
(function () {
  "use strict";

  function limitsOf(target) {
    const zone = target && target.closest ? target.closest("[data-upload-limits]") : null;
    return zone ? JSON.parse(zone.getAttribute("data-upload-limits")) : null;
  }

  /* react-dropzone's rule: a file matches a type by MIME type, MIME wildcard or extension. */
  function accepted(file, accept) {
    const name = (file.name || "").toLowerCase();
    const type = (file.type || "").toLowerCase();
    return accept.some((item) => {
      const a = item.trim().toLowerCase();
      if (a.startsWith(".")) return name.endsWith(a);
      if (a.endsWith("/*")) return type.startsWith(a.slice(0, -1));
      return a === type;
    });
  }

  function check(files, limits) {
    if (!limits || !window.dash_clientside || !window.dash_clientside.set_props) return;
    for (const file of files) {
      let reason = null;
      if (!accepted(file, limits.accept)) reason = "type";
      else if (file.size > limits.max_bytes) reason = "size";
      if (reason) {
        window.dash_clientside.set_props(limits.store, {
          data: {name: String(file.name || "").slice(0, 200), size: file.size, reason: reason,
                 at: Date.now()}});
      }
    }
  }

  document.addEventListener("change", (event) => {
    const t = event.target;
    if (t && t.type === "file" && t.files) check(Array.from(t.files), limitsOf(t));
  }, true);
  document.addEventListener("drop", (event) => {
    if (event.dataTransfer) check(Array.from(event.dataTransfer.files), limitsOf(event.target));
  }, true);
})();
