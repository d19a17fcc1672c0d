"""What every response carries and which requests are answered at all (OWASP basics).

- Security headers on every response: no MIME sniffing, no framing (X-Frame-Options and the
  CSP's frame-ancestors), no referrer, and a Content-Security-Policy Dash works under: scripts
  from this server only, plus the hashes of Dash's own inline scripts (`Dash.csp_hashes`) and
  'unsafe-eval', which plotly.js's WebGL traces (regl compiles its drawing code at run time)
  and AG Grid's value formatters need; inline styles, which plotly.js and React set; images
  from this server and data: / blob: URLs (previews, saliency, downloads). Nothing is loaded
  from anywhere else.
- A Host allow-list against DNS rebinding (a page on evil.example whose name later resolves
  to 127.0.0.1 would otherwise read this server): localhost, 127.0.0.1, [::1], the address the
  server was bound to, and names given with `python app.py --allow-host NAME` or in
  CXRVIZ_ALLOW_HOSTS (comma-separated; gunicorn). Werkzeug's TRUSTED_HOSTS cannot hold an IPv6
  literal, hence the few lines here.
"""
from __future__ import annotations

import os
import re

ALLOW_HOSTS_ENV = "CXRVIZ_ALLOW_HOSTS"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::[0-9]{1,5})?")
HOST_REFUSED = ("This server does not answer to that host name. To serve it under another "
                "name, start it with --allow-host NAME (or set CXRVIZ_ALLOW_HOSTS=NAME).")


def content_security_policy(script_hashes) -> str:
    scripts = " ".join(["'self'", "'unsafe-eval'", *script_hashes])
    return "; ".join([
        "default-src 'self'", f"script-src {scripts}", "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:", "font-src 'self' data:", "connect-src 'self'",
        "worker-src 'self' blob:", "object-src 'none'", "base-uri 'self'",
        "form-action 'self'", "frame-ancestors 'none'"])


def host_name(host: str | None) -> str | None:
    """'LocalHost:8050' -> 'localhost', '[::1]:8050' -> '::1'; None for a malformed header."""
    m = _HOST.fullmatch(host or "")
    return m.group(1).strip("[]").rstrip(".").lower() if m else None


def allowed_hosts(extra=(), bound: str | None = None) -> frozenset:
    """The names this server answers to: local ones, the bound address, `extra`, and the
    environment's CXRVIZ_ALLOW_HOSTS."""
    names = [*extra, *os.environ.get(ALLOW_HOSTS_ENV, "").split(","),
             *([bound] if bound else [])]
    return LOCAL_HOSTS | {n for n in (host_name(x.strip()) for x in names if x.strip()) if n}


def install(server, dash_app, hosts_getter) -> None:
    """Register the host check (before any other request handling of ours) and the headers.
    `hosts_getter()` returns the current allow-list (app.py sets it after parsing options)."""
    from flask import abort, request

    policy = {}

    @server.before_request
    def refuse_foreign_hosts():
        if host_name(request.headers.get("Host", "")) not in hosts_getter():
            abort(400, HOST_REFUSED)

    @server.after_request
    def security_headers(response):
        if "csp" not in policy:  # the inline scripts exist once every callback is registered
            policy["csp"] = content_security_policy(dash_app.csp_hashes())
        for key, value in HEADERS.items():
            response.headers.setdefault(key, value)
        response.headers.setdefault("Content-Security-Policy", policy["csp"])
        return response
