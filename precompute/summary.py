"""What a precompute run prints at its end: images per source, exclusions, skips, values read
as unknown, time per stage (kept apart from the pipeline that fills it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cxrviz import schema as S


@dataclass
class Summary:
    out: Path
    embedded: dict
    skipped: list
    excluded: list
    timings: dict
    computed: int
    from_cache: int
    pretrained: bool
    weights_name: str
    notes: list = field(default_factory=list)
    made_unknown: list = field(default_factory=list)
    run: dict = field(default_factory=dict)  # run_settings: device, batch size, workers

    def text(self) -> str:
        lines = [f"artifact: {self.out}"]
        if self.run:
            lines.append(f"device: {self.run['device']} ({self.run['name']}), batch size "
                         f"{self.run['batch_size']}, {self.run['workers']} decoding workers on "
                         f"{self.run['cores']} cores")
        lines += [f"embedded {source}: {n} images" for source, n in self.embedded.items()]
        lines.append(f"model runs this time: {self.computed} images; from cache: "
                     f"{self.from_cache}")
        for group in self.excluded:
            lines.append(f"not on the map by design: {group[S.E_COUNT]} rows, {group[S.E_REASON]}"
                         f" ({group[S.E_RAW_VALUE] or 'blank'})")
        for group in self.made_unknown:
            lines.append(f"read as unknown: {group[S.E_COUNT]} {group[S.E_COLUMN]} values, "
                         f"{group[S.E_REASON]} ({group[S.E_RAW_VALUE] or 'blank'})")
        lines.append(f"skipped: {len(self.skipped)} images")
        for s in self.skipped:
            lines.append(f"  - [{s['source']}] {s['filename']}: {s['reason']}")
        lines.append("time per stage: " + ", ".join(f"{k} {v:.1f}s"
                                                    for k, v in self.timings.items()))
        if not self.pretrained:
            lines.append(f"WARNING: weights '{self.weights_name}' are not pretrained: the map is "
                         "not meaningful (fine for tests and demos).")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)
