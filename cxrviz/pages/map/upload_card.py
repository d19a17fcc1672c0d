"""One placed upload as the upload panel shows it: its outputs, density percentile, nearest
images (labelled when the upload is unlike anything the map was built from) and OOD warning."""
from __future__ import annotations

from dash import dcc, html

from cxrviz import figures, ids, words
from cxrviz import schema as S
from cxrviz.pages.common import graph_config

SPACE_LABELS = {"logits": "18 outputs", "features": "1024-d features"}


def distance_text(d: float) -> str:
    """3 significant digits, never in exponent notation ('1234', not '1.23e+03')."""
    return f"{d:,.0f}" if abs(d) >= 100 else f"{d:.3g}"


def nearest_heading(u) -> str:
    n, space = len(u["neighbours"]), SPACE_LABELS[u["space"]]
    if u.get("out_of_distribution"):
        return f"{n} nearest images, though unlike any of them ({space})"
    return f"{n} nearest images ({space})"


def upload_card(store, u):
    from cxrviz.appstate import current

    note = current().service.device_note  # None unless this machine lacks the map's device
    rows = [html.Tr([
        html.Td(nb["rank"]),
        html.Td(html.Button(f"patient {nb['patientid']}",
                            id={"type": ids.NEIGHBOUR, "index": nb["image_id"]},
                            className="link-button", title="select on the map")),
        html.Td(distance_text(nb["distance"])),
        html.Td(html.Span(nb["state"], className=f"badge badge-{nb['state']}")),
        html.Td(words.value(S.SURVIVAL, nb["survival"]))]) for nb in u["neighbours"]]
    if u.get("out_of_distribution"):
        ood = html.Div([
            html.B("⚠ This does not look like the collection's chest X-rays. "),
            f"Its distance to its {u['ood_k']}th nearest collection image is at the "
            f"{u['ood_percentile']:.0f}th percentile of the collection's own (flagged beyond "
            f"the {u['ood_threshold']:.0f}th): its position, density and neighbours say "
            "little. On the map it is a hollow star."],
            className="ood-warning")
    else:
        ood = html.Div(
            f"Looks like the collection: its distance to its {u['ood_k']}th nearest image is at "
            f"the {u['ood_percentile']:.0f}th percentile of the collection's own (flagged beyond "
            f"the {u['ood_threshold']:.0f}th).", className="muted small")
    return html.Div([
        html.H5(f"{u['n']}. {u['name']}"), ood,
        *([html.Div(note, className="muted small device-note")] if note else []),
        html.Div([
            html.Img(src=u["preview"], className="upload-preview", alt=f"your image {u['n']}"),
            html.Div([
                html.Div(f"Map position ({u['x']:.2f}, {u['y']:.2f}); bad-state density at this "
                         f"position: percentile {u['percentile']:.0f} of the collection"),
                html.Button("Saliency", id={"type": ids.UPLOAD_SALIENCY, "index": u["n"]},
                            className="button"),
            ]),
        ], className="row"),
        dcc.Graph(figure=figures.outputs_figure(store.pathologies, u["logits"],
                                                f"Model outputs: your image {u['n']}"),
                  config=graph_config(displayModeBar=False), className="upload-outputs"),
        html.H5(nearest_heading(u)),
        html.Table([html.Tr([html.Th("#"), html.Th("image"), html.Th("distance"),
                             html.Th("state"), html.Th("outcome")]), *rows],
                   className="neighbours"),
    ], className="upload-card" + (" ood" if u.get("out_of_distribution") else ""),
        id=f"upload-card-{u['n']}")
