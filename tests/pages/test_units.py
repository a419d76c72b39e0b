"""Small pure parts of the pages: link signatures (with key rotation), text colour on brand colours, the shape of
the live wall's grid."""

from __future__ import annotations

import time

from photobot.pages.render import Branding, text_on
from photobot.signing import GallerySigner


def test_gallery_signatures_survive_key_rotation_and_expire() -> None:
    old = GallerySigner(["old-secret"])
    rotated = GallerySigner(["new-secret", "old-secret"])
    sig = old.sign(7)
    assert rotated.verify(7, sig)  # links signed before the rotation keep working
    assert not GallerySigner(["new-secret"]).verify(7, sig)
    assert not rotated.verify(8, sig)  # one event only
    soon = int(time.time()) + 60
    timed = rotated.sign(7, soon)
    assert rotated.verify(7, timed)
    assert not rotated.verify(7, timed, now=soon + 1)
    for bad in (None, "", "abc", "1.", ".x", "x.y", "0." + "a" * 300):
        assert not rotated.verify(7, bad)


def test_text_colour_follows_the_brand_colour() -> None:
    assert text_on("#5b3df5") == "#ffffff"
    assert text_on("#ffeb3b") == "#111111"
    assert text_on("#fff") == "#111111"
    assert text_on("navy") == "#ffffff"


def test_unsafe_brand_values_are_ignored() -> None:
    from photobot.db.models import Event

    event = Event(name="x", primary_color="red;}body{display:none", logo_url="javascript:alert(1)", language="xx")
    brand = Branding.of(event)
    assert brand.color == "#5b3df5" and brand.logo_url is None and brand.lang == "en" and brand.title == "x"


def test_the_wall_grid_is_shaped_to_the_count() -> None:
    from photobot.pages.routes import WALL_AREA, wall_shape

    shapes = {n: wall_shape(n, *WALL_AREA) for n in (0, 1, 2, 3, 4, 5, 10, 24, 60, 100)}
    assert shapes[0] == shapes[1] == (1, 1)
    assert shapes[2] == (2, 1) and shapes[3] == (3, 1) and shapes[10] == (5, 2)
    for n, (cols, rows) in shapes.items():
        assert cols * rows >= n and (rows - 1) * cols < max(n, 1)  # room for all, no empty row
        side = min(WALL_AREA[0] / cols, WALL_AREA[1] / rows)
        for other in range(1, max(n, 1) + 1):  # no other column count shows the photos larger
            other_rows = -(-max(n, 1) // other)
            assert min(WALL_AREA[0] / other, WALL_AREA[1] / other_rows) <= side + 1e-9
