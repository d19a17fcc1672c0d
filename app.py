"""cxrviz app: python app.py --artifact artifacts/covid [--host 127.0.0.1] [--port 8050] [--debug]

Teams: CXRVIZ_ARTIFACT=artifacts/covid gunicorn 'app:server' -w 2 -b 127.0.0.1:8050
(CXRVIZ_ALLOW_HOSTS=name,... for the host names it is reached by beyond localhost)
Reads the artifact only; never imports torch or umap at start-up (the model loads afterwards, in
the background, for placing new images).
"""
from __future__ import annotations

import argparse
import os
import sys

from cxrviz.io.artifact import ArtifactError

DEFAULT_ARTIFACT = "artifacts/covid"


def build(artifact: str, model: bool | None = None, weights: str | None = None,
          allow_host=(), host: str | None = None):
    """The app for one artifact, with its model service started (unless model is off),
    answering to localhost, `host` (the bound address), `allow_host` and CXRVIZ_ALLOW_HOSTS."""
    from cxrviz.app import allow_hosts, create_app, start_model

    if model is None:
        model = os.environ.get("CXRVIZ_NO_MODEL", "") in ("", "0")
    weights = weights or os.environ.get("CXRVIZ_WEIGHTS") or None
    app = create_app(artifact, model=model, weights_path=weights)
    allow_hosts(allow_host, bound=host)
    start_model()
    return app


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python app.py", description=__doc__.splitlines()[0])
    p.add_argument("--artifact", default=os.environ.get("CXRVIZ_ARTIFACT", DEFAULT_ARTIFACT))
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)")
    p.add_argument("--port", type=int, default=8050)
    p.add_argument("--debug", action="store_true", help="Dash debug mode (never in production)")
    p.add_argument("--no-model", action="store_true",
                   help="serve the map only: no model in memory, no upload or saliency "
                        "(or CXRVIZ_NO_MODEL=1)")
    p.add_argument("--weights", metavar="PATH",
                   help="the artifact's weights file, when it is neither in torchxrayvision's "
                        "cache folder nor at the path the artifact recorded (checked by sha256; "
                        "or CXRVIZ_WEIGHTS=PATH)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a host name (or address) this server may be reached by, beyond "
                        "localhost, 127.0.0.1, [::1] and --host; repeatable (or "
                        "CXRVIZ_ALLOW_HOSTS=NAME,...). Requests for other names get 400 "
                        "(DNS rebinding)")
    args = p.parse_args(argv)
    try:
        app = build(args.artifact, model=False if args.no_model else None, weights=args.weights,
                    allow_host=args.allow_host, host=args.host)
    except ArtifactError as exc:
        print(f"error: cannot serve {args.artifact}: {exc}", file=sys.stderr)
        return 2
    print(f"cxrviz: serving {args.artifact} on http://{args.host}:{args.port}/")
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.allow_host:
        print("cxrviz: other machines reach it only by the names given with --allow-host NAME",
              file=sys.stderr)
    app.run(host=args.host, port=args.port, debug=args.debug)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def __getattr__(name):
    """gunicorn 'app:server': built on first access from CXRVIZ_ARTIFACT (or the default)."""
    if name == "server":
        artifact = os.environ.get("CXRVIZ_ARTIFACT", DEFAULT_ARTIFACT)
        try:
            server = build(artifact).server
        except ArtifactError as exc:  # the message, not a traceback, in gunicorn's log
            print(f"error: cannot serve {artifact}: {exc}", file=sys.stderr)
            raise SystemExit(3) from None  # gunicorn's "worker failed to boot": it stops
        globals()["server"] = server
        return server
    raise AttributeError(name)
