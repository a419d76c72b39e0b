"""Draw the preview images of the shipped styles (src/photobot/data/previews/*.jpg) with Pillow.

Each preview is the same stylised guest (head, hair, shoulders) drawn the way the style would turn out: a
worked example for the kiosk's style picker, made by the project (no third-party artwork, nothing to license).
Run from the repository root: `.venv/bin/python scripts/style_previews.py`; the output is deterministic.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps

SIZE = 384
SS = 2  # drawn at twice the size, then downscaled: smooth edges
W = SIZE * SS
OUT = Path(__file__).resolve().parent.parent / "src" / "photobot" / "data" / "previews"

RGB = tuple[int, int, int]


def gradient(top: RGB, bottom: RGB, size: int = W) -> Image.Image:
    column = Image.new("RGB", (1, size))
    for y in range(size):
        t = y / (size - 1)
        column.putpixel((0, y), tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))  # type: ignore[arg-type]
    return column.resize((size, size))


def radial(inner: RGB, outer: RGB, centre: tuple[float, float] = (0.5, 0.45), size: int = W) -> Image.Image:
    mask = Image.radial_gradient("L").resize((size * 2, size * 2))
    cx, cy = int(centre[0] * size), int(centre[1] * size)
    mask = mask.crop((size - cx, size - cy, 2 * size - cx, 2 * size - cy))
    return Image.composite(Image.new("RGB", (size, size), outer), Image.new("RGB", (size, size), inner), mask)


def person(
    img: Image.Image,
    *,
    skin: RGB,
    hair: RGB,
    cloth: RGB,
    outline: RGB | None = None,
    width: int = 0,
    eyes: RGB = (40, 30, 30),
    eye_scale: float = 1.0,
    shirt: RGB | None = None,
    tie: RGB | None = None,
    blush: RGB | None = None,
) -> None:
    """The guest: shoulders, neck, head, hair and a face, centred, in flat colours (effects come after)."""
    d = ImageDraw.Draw(img)
    o = {"outline": outline, "width": width * SS} if outline else {}
    cx = W // 2
    # shoulders and body
    d.rounded_rectangle((cx - 150 * SS, 270 * SS, cx + 150 * SS, 420 * SS), radius=90 * SS, fill=cloth, **o)
    if shirt:
        d.polygon([(cx - 42 * SS, 272 * SS), (cx + 42 * SS, 272 * SS), (cx, 350 * SS)], fill=shirt)
    if tie:
        d.polygon([(cx - 12 * SS, 285 * SS), (cx + 12 * SS, 285 * SS), (cx + 16 * SS, 345 * SS),
                   (cx, 362 * SS), (cx - 16 * SS, 345 * SS)], fill=tie)  # fmt: skip
    # neck
    d.rectangle((cx - 30 * SS, 220 * SS, cx + 30 * SS, 285 * SS), fill=skin, **o)
    # hair behind the head
    d.ellipse((cx - 92 * SS, 58 * SS, cx + 92 * SS, 250 * SS), fill=hair)
    # head
    d.ellipse((cx - 76 * SS, 82 * SS, cx + 76 * SS, 258 * SS), fill=skin, **o)
    # fringe
    d.chord((cx - 84 * SS, 62 * SS, cx + 84 * SS, 190 * SS), 180, 360, fill=hair)
    # eyes
    r = int(9 * eye_scale) * SS
    for dx in (-32, 32):
        ex, ey = cx + dx * SS, 170 * SS
        d.ellipse((ex - r, ey - int(r * 1.2), ex + r, ey + int(r * 1.2)), fill=eyes)
        d.ellipse((ex - r // 3 + r // 3, ey - r // 2 - r // 3, ex + r // 3 + r // 3, ey - r // 2 + r // 3),
                  fill=(255, 255, 255))  # fmt: skip
    if blush:
        for dx in (-50, 50):
            d.ellipse((cx + (dx - 14) * SS, 198 * SS, cx + (dx + 14) * SS, 210 * SS), fill=blush)
    # smile
    d.arc((cx - 28 * SS, 190 * SS, cx + 28 * SS, 228 * SS), 20, 160, fill=(120, 50, 50), width=4 * SS)


def finish(img: Image.Image) -> Image.Image:
    return img.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def pixar() -> Image.Image:
    img = radial((255, 214, 170), (214, 120, 80))
    person(img, skin=(247, 200, 170), hair=(120, 70, 40), cloth=(60, 130, 200), eye_scale=1.6, blush=(240, 150, 140))
    shade = radial((255, 255, 255), (0, 0, 0), (0.38, 0.35)).convert("L").point(lambda v: 150 + v // 3)
    return finish(ImageChops.multiply(img, Image.merge("RGB", (shade, shade, shade))).filter(ImageFilter.SMOOTH_MORE))


def oil() -> Image.Image:
    img = radial((120, 80, 40), (30, 18, 10), (0.3, 0.3))
    person(img, skin=(222, 180, 140), hair=(60, 36, 20), cloth=(90, 20, 24))
    rng = random.Random(2)
    strokes = ImageDraw.Draw(img)
    pixels = img.filter(ImageFilter.GaussianBlur(2 * SS))
    for _ in range(5000):
        x, y = rng.randrange(W), rng.randrange(W)
        colour = pixels.getpixel((x, y))
        angle = rng.uniform(-0.6, 0.6) + (math.pi / 2 if y < 0.6 * W else 0)
        length = rng.randint(4, 12) * SS
        jitter = tuple(max(0, min(255, c + rng.randint(-10, 10))) for c in colour)  # type: ignore[union-attr]
        strokes.line((x, y, x + length * math.cos(angle), y + length * math.sin(angle)), fill=jitter, width=2 * SS)
    light = radial((255, 240, 210), (60, 50, 40), (0.35, 0.3))
    return finish(ImageChops.multiply(img, light).filter(ImageFilter.SMOOTH))


def anime() -> Image.Image:
    img = gradient((150, 200, 255), (255, 200, 230))
    d = ImageDraw.Draw(img)
    for x, y, r in ((90, 90, 40), (300, 60, 55), (330, 150, 30)):
        d.ellipse(((x - r) * SS, (y - r // 2) * SS, (x + r) * SS, (y + r // 2) * SS), fill=(255, 255, 255))
    person(img, skin=(255, 226, 210), hair=(90, 60, 160), cloth=(250, 250, 255), outline=(40, 30, 60), width=3,
           eyes=(70, 50, 150), eye_scale=2.0, blush=(255, 170, 180))  # fmt: skip
    return finish(img)


def comic() -> Image.Image:
    img = Image.new("RGB", (W, W), (255, 220, 0))
    d = ImageDraw.Draw(img)
    cx, cy = W // 2, int(W * 0.45)
    for i in range(36):  # action burst
        a = i * math.tau / 36
        d.polygon([(cx, cy), (cx + W * math.cos(a), cy + W * math.sin(a)),
                   (cx + W * math.cos(a + 0.06), cy + W * math.sin(a + 0.06))], fill=(255, 120, 0))  # fmt: skip
    person(img, skin=(255, 200, 160), hair=(20, 20, 20), cloth=(220, 20, 40), outline=(0, 0, 0), width=6)
    dots = Image.new("L", (W, W), 0)
    dd = ImageDraw.Draw(dots)
    for y in range(0, W, 14 * SS):
        for x in range((y // (14 * SS)) % 2 * 7 * SS, W, 14 * SS):
            dd.ellipse((x, y, x + 5 * SS, y + 5 * SS), fill=90)
    img = Image.composite(Image.new("RGB", (W, W), (0, 0, 0)), img, dots)
    ImageDraw.Draw(img).rectangle((0, 0, W - 1, W - 1), outline=(0, 0, 0), width=10 * SS)
    return finish(img)


def business() -> Image.Image:
    img = radial((205, 208, 212), (120, 124, 130), (0.5, 0.4))
    person(img, skin=(236, 196, 164), hair=(70, 50, 35), cloth=(30, 36, 52), shirt=(245, 245, 245), tie=(120, 20, 40))
    return finish(img.filter(ImageFilter.SMOOTH))


def noir() -> Image.Image:
    img = gradient((10, 12, 30), (40, 10, 40))
    person(img, skin=(90, 80, 110), hair=(10, 10, 15), cloth=(8, 8, 12), shirt=(40, 40, 50))
    glow = Image.new("RGB", (W, W), (0, 0, 0))
    g = ImageDraw.Draw(glow)
    g.ellipse((W // 2 - 200 * SS, 40 * SS, W // 2 - 40 * SS, 300 * SS), fill=(0, 200, 220))
    g.ellipse((W // 2 + 40 * SS, 40 * SS, W // 2 + 200 * SS, 300 * SS), fill=(240, 0, 160))
    img = ImageChops.add(img, glow.filter(ImageFilter.GaussianBlur(40 * SS)))
    rain = ImageDraw.Draw(img)
    rng = random.Random(7)
    for _ in range(260):
        x, y = rng.randrange(W), rng.randrange(W)
        rain.line((x, y, x - 6 * SS, y + 28 * SS), fill=(150, 170, 210), width=SS)
    return finish(img)


def eighties() -> Image.Image:
    img = gradient((30, 0, 60), (240, 60, 160))
    d = ImageDraw.Draw(img)
    horizon = int(W * 0.55)
    for i in range(-12, 13):  # laser grid
        d.line((W // 2 + i * 20 * SS, horizon, W // 2 + i * 140 * SS, W), fill=(0, 240, 255), width=2 * SS)
    for k in range(1, 12):
        y = horizon + int((W - horizon) * (k / 11) ** 1.8)
        d.line((0, y, W, y), fill=(0, 240, 255), width=2 * SS)
    person(img, skin=(250, 205, 180), hair=(200, 120, 40), cloth=(80, 220, 200), eye_scale=1.1)
    return finish(ImageOps.autocontrast(img.filter(ImageFilter.GaussianBlur(1.2 * SS)), cutoff=1))


def watercolour() -> Image.Image:
    img = Image.new("RGB", (W, W), (250, 246, 236))
    rng = random.Random(3)
    wash = Image.new("RGB", (W, W), (250, 246, 236))
    wd = ImageDraw.Draw(wash)
    for colour in ((170, 210, 240), (250, 200, 200), (200, 235, 200)):
        for _ in range(6):
            x, y, r = rng.randrange(W), rng.randrange(W), rng.randint(60, 160) * SS
            wd.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    img = Image.blend(img, wash.filter(ImageFilter.GaussianBlur(30 * SS)), 0.7)
    figure = img.copy()
    person(figure, skin=(250, 215, 190), hair=(160, 100, 70), cloth=(120, 160, 220), eyes=(80, 70, 90))
    edges = figure.filter(ImageFilter.FIND_EDGES).convert("L").point(lambda v: 255 if v > 40 else 0)
    figure = Image.composite(
        Image.new("RGB", (W, W), (110, 90, 110)), figure, edges.filter(ImageFilter.GaussianBlur(SS))
    )
    img = Image.blend(img, figure.filter(ImageFilter.GaussianBlur(1.2 * SS)), 0.85)
    grain = Image.effect_noise((W, W), 18).convert("RGB")
    return finish(ImageChops.multiply(img, ImageOps.autocontrast(grain).point(lambda v: 225 + v // 9)))


def pop_art() -> Image.Image:
    half = W // 2
    tiles = [((255, 60, 140), (255, 230, 0), (0, 170, 255)), ((0, 200, 120), (255, 120, 0), (150, 0, 255)),
             ((255, 230, 0), (0, 120, 255), (255, 40, 40)), ((120, 0, 255), (255, 90, 200), (0, 220, 200))]  # fmt: skip
    img = Image.new("RGB", (W, W))
    for i, (back, skin, hair) in enumerate(tiles):
        tile = Image.new("RGB", (W, W), back)
        person(tile, skin=skin, hair=hair, cloth=(20, 20, 20), outline=(0, 0, 0), width=5)
        img.paste(tile.resize((half, half)), ((i % 2) * half, (i // 2) * half))
    return finish(img)


def fantasy() -> Image.Image:
    img = radial((250, 220, 120), (10, 60, 40), (0.5, 0.25))
    d = ImageDraw.Draw(img)
    rng = random.Random(5)
    for _ in range(14):  # trees
        x = rng.randrange(W)
        d.polygon([(x, rng.randint(60, 160) * SS), (x - 50 * SS, W), (x + 50 * SS, W)], fill=(12, 70, 45))
    person(img, skin=(240, 200, 170), hair=(230, 200, 120), cloth=(170, 175, 190), outline=(90, 70, 20), width=3)
    d = ImageDraw.Draw(img)
    for dx in (-120, 120):  # pauldrons
        d.ellipse((W // 2 + (dx - 50) * SS, 255 * SS, W // 2 + (dx + 50) * SS, 330 * SS), fill=(200, 170, 60),
                  outline=(110, 80, 20), width=4 * SS)  # fmt: skip
    for _ in range(80):  # fireflies, around the guest
        x, y, r = rng.randrange(W), rng.randrange(W // 2), rng.randint(2, 5) * SS
        if abs(x - W // 2) > 100 * SS:
            d.ellipse((x - r, y - r, x + r, y + r), fill=(255, 250, 180))
    return finish(img.filter(ImageFilter.SMOOTH))


PREVIEWS: dict[str, Callable[[], Image.Image]] = {
    "pb_a": pixar, "pb_b": oil, "pb_c": anime, "pb_d": comic, "suit_b": business, "jhonw_c": noir,
    "retro_80s": eighties, "watercolor": watercolour, "pop_art": pop_art, "fantasy": fantasy,
}  # fmt: skip


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for style_id, draw in PREVIEWS.items():
        path = OUT / f"{style_id}.jpg"
        draw().save(path, "JPEG", quality=84, optimize=True, progressive=True)
        print(
            f"{path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}: {path.stat().st_size} bytes"
        )


if __name__ == "__main__":
    main()
