"""The run report's figure: the loss and accuracy curves, drawn with matplotlib (Agg, no display)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend is chosen before pyplot loads)


def curves_png(panels: list[dict[str, list[tuple[float, float]]]], width: int = 640, height: int = 240) -> bytes:
    """One panel per dict of series name -> [(step, value)], stacked, sharing the step axis; a PNG."""
    panels = [p for p in panels if any(points for points in p.values())] or [{}]
    dpi = 100
    fig, axes = plt.subplots(len(panels), 1, figsize=(width / dpi, height * len(panels) / dpi), dpi=dpi, sharex=True, squeeze=False)
    try:
        for ax, series in zip(axes[:, 0], panels, strict=True):
            for name, points in series.items():
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(xs, ys, label=name, linewidth=1.5)
            if series:
                ax.legend(loc="best", fontsize=8, frameon=False)
            ax.grid(True, alpha=0.3)
            ax.tick_params(labelsize=8)
        axes[-1, 0].set_xlabel("step", fontsize=8)
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(fig)
