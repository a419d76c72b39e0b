"""Draw the sample photo the first-run curl sends (`src/photobot/data/sample-photo.jpg`).

A generated portrait (no person's likeness, no licence to track): a head and shoulders in front of a soft
background, with a light from one side, skin and fabric texture and a little sensor noise, saved as an ordinary
camera-sized JPEG, so intake, the simulator and the guest page see what a kiosk would send. Deterministic: the
same bytes on every run (`python scripts/make-sample-photo.py`).
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter

W, H = 768, 1024
OUT = Path(__file__).resolve().parents[1] / "src" / "photobot" / "data" / "sample-photo.jpg"


def vertical_gradient(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    strip = Image.new("RGB", (1, H))
    for y in range(H):
        t = y / (H - 1)
        strip.putpixel((0, y), tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    return strip.resize((W, H))


def soft_ellipse(size: tuple[int, int], box: tuple[int, int, int, int], blur: float) -> Image.Image:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse(box, fill=255)
    return mask.filter(ImageFilter.GaussianBlur(blur))


def main() -> None:
    rng = random.Random(15)
    img = vertical_gradient((92, 124, 150), (196, 176, 150))  # a wall lit from above, warmer near the floor
    # bokeh: out-of-focus lights behind the subject
    bokeh = Image.new("RGB", (W, H), (0, 0, 0))
    draw = ImageDraw.Draw(bokeh)
    for _ in range(24):
        x, y, r = rng.randrange(W), rng.randrange(H // 2), rng.randrange(18, 60)
        tint = (rng.randrange(150, 255), rng.randrange(120, 220), rng.randrange(60, 160))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tint)
    img = ImageChops.screen(img, bokeh.filter(ImageFilter.GaussianBlur(14)).point(lambda v: v // 3))

    # shoulders and a jacket
    body = Image.new("RGB", (W, H), (44, 58, 84))
    body_mask = soft_ellipse((W, H), (70, 700, 700, 1400), 6)
    img.paste(body, (0, 0), body_mask)
    collar = Image.new("L", (W, H), 0)
    ImageDraw.Draw(collar).polygon([(318, 700), (452, 700), (385, 840)], fill=255)  # an open shirt collar
    img.paste(Image.new("RGB", (W, H), (232, 228, 220)), (0, 0), collar.filter(ImageFilter.GaussianBlur(3)))
    neck = soft_ellipse((W, H), (330, 560, 440, 790), 5)
    img.paste(Image.new("RGB", (W, H), (196, 142, 112)), (0, 0), neck)

    # the head: skin with a light from the left
    head_box = (250, 250, 520, 640)
    skin = Image.new("RGB", (W, H), (214, 162, 130))
    shade = Image.new("L", (W, H), 0)
    ImageDraw.Draw(shade).ellipse((330, 230, 640, 680), fill=90)
    skin = Image.composite(Image.new("RGB", (W, H), (160, 110, 86)), skin, shade.filter(ImageFilter.GaussianBlur(40)))
    img.paste(skin, (0, 0), soft_ellipse((W, H), head_box, 3))
    ears = Image.new("L", (W, H), 0)
    ImageDraw.Draw(ears).ellipse((232, 420, 272, 500), fill=255)
    ImageDraw.Draw(ears).ellipse((498, 420, 538, 500), fill=255)
    img.paste(Image.new("RGB", (W, H), (190, 138, 110)), (0, 0), ears.filter(ImageFilter.GaussianBlur(3)))

    # hair
    hair = Image.new("L", (W, H), 0)
    hd = ImageDraw.Draw(hair)
    hd.ellipse((236, 200, 534, 420), fill=255)
    hd.rectangle((236, 300, 270, 470), fill=255)
    hd.rectangle((500, 300, 534, 450), fill=255)
    hd.ellipse((300, 330, 520, 420), fill=0)  # the forehead
    img.paste(Image.new("RGB", (W, H), (58, 38, 28)), (0, 0), hair.filter(ImageFilter.GaussianBlur(4)))

    face = ImageDraw.Draw(img)
    for cx in (338, 432):  # eyes, brows
        face.ellipse((cx - 22, 442, cx + 22, 466), fill=(240, 236, 230))
        face.ellipse((cx - 10, 444, cx + 10, 464), fill=(74, 52, 36))
        face.ellipse((cx - 4, 450, cx + 3, 457), fill=(16, 12, 10))
        face.line((cx - 28, 424, cx + 26, 418), fill=(70, 46, 34), width=7)
    face.line((385, 470, 377, 535), fill=(176, 122, 96), width=4)  # nose
    face.arc((362, 520, 400, 548), 20, 160, fill=(160, 108, 86), width=3)
    face.chord((340, 560, 432, 606), 0, 180, fill=(176, 84, 84))  # a smile
    face.chord((352, 562, 420, 584), 0, 180, fill=(244, 240, 234))
    img = img.filter(ImageFilter.GaussianBlur(1.2))

    # skin and fabric texture, then sensor noise, as a camera would record
    noise = Image.effect_noise((W, H), 18).convert("RGB")
    img = Image.blend(img, ImageChops.overlay(img, noise), 0.25)
    img = img.filter(ImageFilter.UnsharpMask(radius=2, percent=60, threshold=2))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    img.save(OUT, "JPEG", quality=84, optimize=True, progressive=True)
    print(f"{OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
