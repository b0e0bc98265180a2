import struct

from pipeline_trainer.report import curves_png


def _size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def test_curves_png_draws_one_panel_per_dict_with_matplotlib():
    loss = [(s, 5.0 / (1 + s)) for s in range(1, 50)]
    png = curves_png([{"simclr loss": loss}, {"held-out kNN": [(5, 0.4), (10, 0.55)], "linear probe": [(10, 0.5)]}])
    assert _size(png) == (640, 480)
    assert b"Matplotlib" in png  # the Software text chunk: drawn by matplotlib, not by hand
    assert _size(curves_png([{"empty": []}])) == (640, 240)
