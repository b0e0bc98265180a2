"""The run report: JSON, and a PNG of the loss and accuracy curves drawn with numpy + zlib."""

from __future__ import annotations

import struct
import zlib

import numpy as np

_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]

# A 3x5 pixel font (rows top to bottom, '#' = ink) for panel titles and axis values.
_GLYPHS = {
    "0": "###|#.#|#.#|#.#|###",
    "1": ".#.|##.|.#.|.#.|###",
    "2": "###|..#|###|#..|###",
    "3": "###|..#|.##|..#|###",
    "4": "#.#|#.#|###|..#|..#",
    "5": "###|#..|###|..#|###",
    "6": "###|#..|###|#.#|###",
    "7": "###|..#|..#|.#.|.#.",
    "8": "###|#.#|###|#.#|###",
    "9": "###|#.#|###|..#|###",
    ".": "...|...|...|...|.#.",
    "-": "...|...|###|...|...",
    ":": "...|.#.|...|.#.|...",
    " ": "...|...|...|...|...",
    "(": ".#.|#..|#..|#..|.#.",
    ")": ".#.|..#|..#|..#|.#.",
    "a": ".#.|#.#|###|#.#|#.#",
    "b": "##.|#.#|##.|#.#|##.",
    "c": ".##|#..|#..|#..|.##",
    "d": "##.|#.#|#.#|#.#|##.",
    "e": "###|#..|##.|#..|###",
    "f": "###|#..|##.|#..|#..",
    "g": ".##|#..|#.#|#.#|.##",
    "h": "#.#|#.#|###|#.#|#.#",
    "i": "###|.#.|.#.|.#.|###",
    "j": "..#|..#|..#|#.#|.#.",
    "k": "#.#|##.|#..|##.|#.#",
    "l": "#..|#..|#..|#..|###",
    "m": "#.#|###|###|#.#|#.#",
    "n": "##.|#.#|#.#|#.#|#.#",
    "o": ".#.|#.#|#.#|#.#|.#.",
    "p": "##.|#.#|##.|#..|#..",
    "q": ".#.|#.#|#.#|##.|.##",
    "r": "##.|#.#|##.|#.#|#.#",
    "s": ".##|#..|.#.|..#|##.",
    "t": "###|.#.|.#.|.#.|.#.",
    "u": "#.#|#.#|#.#|#.#|###",
    "v": "#.#|#.#|#.#|#.#|.#.",
    "w": "#.#|#.#|###|###|#.#",
    "x": "#.#|#.#|.#.|#.#|#.#",
    "y": "#.#|#.#|.#.|.#.|.#.",
    "z": "###|..#|.#.|#..|###",
}


def _text(img: np.ndarray, x: int, y: int, text: str, colour, scale: int = 2) -> None:
    for ch in text.lower():
        rows = _GLYPHS.get(ch, _GLYPHS[" "]).split("|")
        for r, row in enumerate(rows):
            for c, cell in enumerate(row):
                if cell == "#":
                    y0, x0 = y + r * scale, x + c * scale
                    img[y0 : y0 + scale, x0 : x0 + scale] = colour
        x += 4 * scale


def _png(rgb: np.ndarray) -> bytes:
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def _draw_line(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, colour) -> None:
    steps = max(abs(x1 - x0), abs(y1 - y0), 1)
    xs = np.linspace(x0, x1, steps + 1).round().astype(int)
    ys = np.linspace(y0, y1, steps + 1).round().astype(int)
    for dx in (0, 1):
        img[np.clip(ys, 0, img.shape[0] - 1), np.clip(xs + dx, 0, img.shape[1] - 1)] = colour


def curves_png(panels: list[dict[str, list[tuple[float, float]]]], width: int = 480, height: int = 220) -> bytes:
    """One panel per dict of series name -> [(x, y)]; each panel scaled to its own range, titled with
    its series names (in their colours) and labelled with the y range and the last x (the step)."""
    img = np.full((height * len(panels), width, 3), 255, dtype=np.uint8)
    for p, series in enumerate(panels):
        top, left, right, bottom = p * height + 24, 48, width - 12, (p + 1) * height - 24
        img[top:bottom, left] = (160, 160, 160)
        img[bottom, left:right] = (160, 160, 160)
        points = [pt for pts in series.values() for pt in pts if np.isfinite(pt[1])]
        if not points:
            continue
        xs, ys = np.array([pt[0] for pt in points]), np.array([pt[1] for pt in points])
        x_lo, x_hi = float(xs.min()), float(xs.max()) or 1.0
        y_lo, y_hi = float(ys.min()), float(ys.max())
        if y_hi - y_lo < 1e-9:
            y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
        grey = (90, 90, 90)
        _text(img, 2, top, f"{y_hi:.3g}", grey)
        _text(img, 2, bottom - 10, f"{y_lo:.3g}", grey)
        _text(img, right - 4 * 2 * len(f"{x_hi:g}"), bottom + 6, f"{x_hi:g}", grey)
        x_text = left
        for i, name in enumerate(series):
            _text(img, x_text, p * height + 6, name, _COLOURS[i % len(_COLOURS)])
            x_text += (len(name) + 2) * 8
        for i, pts in enumerate(series.values()):
            pts = [pt for pt in pts if np.isfinite(pt[1])]
            to_px = [
                (left + int((x - x_lo) / max(x_hi - x_lo, 1e-9) * (right - left)), bottom - int((y - y_lo) / (y_hi - y_lo) * (bottom - top))) for x, y in pts
            ]
            colour = _COLOURS[i % len(_COLOURS)]
            for (a, b), (c, d) in zip(to_px, to_px[1:], strict=False):
                _draw_line(img, a, b, c, d, colour)
            for a, b in to_px[:1] if len(to_px) == 1 else []:
                img[max(b - 2, 0) : b + 3, max(a - 2, 0) : a + 3] = colour
    return _png(img)
