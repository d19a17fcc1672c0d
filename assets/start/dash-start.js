/* cxrviz: the map page's start. Its HTML (cxrviz/app.py) holds Dash's scripts and renderer in
 * <template id="cxrviz-dash-scripts"> so that the map, drawn in the page's shell
 * (cxrviz/pages/map/shell.py) by assets/map/cxrviz-map.js, has the browser's main thread and the
 * server to itself until its first frame; then this file starts Dash: each script as the page
 * wrote it, in order (inline ones once the files before them have run). The map calls
 * window.cxrvizStartDash() after its first frame, or when it cannot draw; 5 s is the latest. */
(function () {
  "use strict";
  let started = false;

  function copy(old) {
    const el = document.createElement("script");
    for (const a of old.attributes) el.setAttribute(a.name, a.value);
    if (!old.src) el.textContent = old.textContent;
    el.async = false;  // files run in the order they are inserted
    return el;
  }

  function start(why) {
    if (started) return;
    started = true;
    window.cxrvizDashStarted = why || "asked";  // for tests: the map drew, failed, or 5 s
    const held = document.getElementById("cxrviz-dash-scripts");
    if (!held) return;
    let chain = null, lastFile = Promise.resolve();  // lastFile: the latest file has run
    for (const old of held.content.querySelectorAll("script")) {
      const insert = () => {
        const el = copy(old);
        if (old.src) lastFile = new Promise((done) => { el.onload = done; el.onerror = done; });
        document.body.appendChild(el);
      };
      if (old.src && !chain) insert();
      else chain = (chain || Promise.resolve()).then(() => lastFile).then(insert);
    }
  }

  window.cxrvizStartDash = start;
  if (window.cxrvizMap && window.cxrvizMap.firstPaint) start("first frame");
  setTimeout(() => start("5 s"), 5000);  // no WebGL, a failed bundle: Dash's page comes anyway
})();
