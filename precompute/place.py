"""python -m precompute.place IMAGE... --artifact DIR [--json] [-k 8] [--space logits|features]

Places each image on the artifact's map exactly as the app does (same preprocessing, the
artifact's weights, UMAP's transform rebuilt from the artifact's arrays): coordinates, the 18
outputs, the bad-state density percentile and the nearest collection images. Nothing is written
to disk, and nothing of the artifact but data is read.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m precompute.place", description=__doc__.split("\n")[2])
    p.add_argument("images", nargs="+", help="PNG, JPEG or DICOM files")
    p.add_argument("--artifact", required=True)
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument("-k", type=int, default=8, help="nearest images to list (default 8)")
    p.add_argument("--space", choices=("logits", "features"), default="logits")
    p.add_argument("--weights", metavar="PATH",
                   help="the artifact's weights file, when it is neither in torchxrayvision's "
                        "cache folder nor at the path recorded in the artifact (checked by "
                        "sha256); a file given here is trusted, even a pickled module")
    p.add_argument("--download", action="store_true", help="allow downloading named weights")
    args = p.parse_args(argv)

    from cxrviz.compute.model import WeightsUnavailable
    from cxrviz.compute.placement import OOD_K, Placer, UploadRejected
    from cxrviz.io.artifact import ArtifactError, read_artifact

    try:
        art = read_artifact(args.artifact)
        placer = Placer(art).load(weights_path=args.weights, allow_download=args.download)
    except (ArtifactError, WeightsUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4 if isinstance(exc, WeightsUnavailable) else 3
    results, failed = [], 0
    for name in args.images:
        try:
            placed = placer.place(Path(name).read_bytes(), k=args.k, space=args.space)
            results.append({"file": name, **placed.to_dict(art.pathologies)})
        except (UploadRejected, OSError) as exc:
            failed += 1
            results.append({"file": name, "error": str(exc)})
    info = {"artifact": str(art.path), "weights": art.weights.to_manifest(),
            "pretrained": art.pretrained, "space": args.space, "results": results}
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        if not art.pretrained:
            print("WARNING: this artifact was built from an untrained network: not meaningful.")
        for r in results:
            if "error" in r:
                print(f"{r['file']}: not placed: {r['error']}")
                continue
            top = sorted(r["outputs"].items(), key=lambda kv: -kv[1])[:3]
            if r["out_of_distribution"]:
                print(f"{r['file']}: WARNING: does not look like the collection's chest X-rays "
                      f"(distance to its {OOD_K}th nearest image is at the "
                      f"{r['ood_percentile']:.0f}th percentile of the collection's own; flagged "
                      f"beyond the {r['ood_threshold_percentile']:.0f}th): read what follows with "
                      "care")
            print(f"{r['file']}: map ({r['x']:.3f}, {r['y']:.3f}); bad-state density "
                  f"percentile {r['bad_density_percentile']:.0f}; top outputs (logit): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in top))
            for nb in r["neighbours"]:
                # the admission where it is not the patient (MIMIC: a patient has several)
                where = (f"  (patient {nb['patientid']}, admission {nb['episode']})"
                         if nb.get("episode") not in (None, nb.get("patientid")) else "")
                print(f"    {nb['rank']}. {nb['image_id']}  distance {nb['distance']:.4g}{where}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
