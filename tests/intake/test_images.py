"""The image pipeline on real encoded files: orientation, metadata stripping, guards, formats, downscaling."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image, ImageCms, ImageDraw, ImageOps, PngImagePlugin

from photobot.intake import (
    ImageProcessor,
    InvalidImage,
    ProcessedImage,
    TooManyPixels,
    UnsupportedMediaType,
    process_image,
    verify_image,
)
from photobot.intake import images as images_module
from tests.support.images import encode, png_bomb

MAX_PIXELS = 40_000_000
RED, BLUE = (220, 20, 20), (20, 20, 220)


def run(data: bytes, tmp_path: Path, **options: object) -> ProcessedImage:
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    params: dict[str, object] = {"max_pixels": MAX_PIXELS, "dest_dir": tmp_path}
    params.update(options)
    return process_image(source, **params)  # type: ignore[arg-type]


def assert_no_metadata(path: Path) -> None:
    raw = path.read_bytes()
    with Image.open(path) as img:
        assert len(img.getexif()) == 0
        for key in ("exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment", "Comment", "Software"):
            assert key not in img.info, key
    for marker in (b"Exif\x00\x00", b"GPS", b"http://ns.adobe.com/xap", b"secret-camera", b"eXIf", b"tEXt"):
        assert marker not in raw, marker


def photo_with_marker(size: tuple[int, int] = (400, 200)) -> Image.Image:
    """Blue image with a red square in the stored top-left corner."""
    img = Image.new("RGB", size, BLUE)
    ImageDraw.Draw(img).rectangle((0, 0, 59, 59), fill=RED)
    return img


def is_red(pixel: tuple[int, ...]) -> bool:
    return pixel[0] > 150 and pixel[2] < 100


# --- EXIF orientation and metadata -----------------------------------------------------------------------


def test_exif_orientation_applied_and_gps_stripped(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    exif[0x010F] = "secret-camera"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (52.0, 22.0, 1.5)
    gps[3] = "E"
    gps[4] = (4.0, 53.0, 2.25)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://ns.adobe.com/xap/1.0/"/></x:xmpmeta>'
    data = encode(photo_with_marker(), "JPEG", quality=95, exif=exif, xmp=xmp, comment=b"secret-camera")
    assert b"http://ns.adobe.com/xap" in data and b"secret-camera" in data
    with Image.open(io.BytesIO(data)) as original:
        assert original.getexif().get_ifd(0x8825)  # the input really carries GPS
        expected = ImageOps.exif_transpose(original)
    result = run(data, tmp_path)
    assert (result.width, result.height) == (200, 400)  # dimensions swapped
    assert result.content_type == "image/jpeg" and result.extension == "jpg"
    with Image.open(result.path) as out:
        assert out.size == expected.size
        # Orientation 6: the stored top-left corner is displayed top-right.
        assert is_red(out.getpixel((200 - 10, 10)))
        assert not is_red(out.getpixel((10, 10)))
        assert is_red(expected.getpixel((200 - 10, 10)))
    assert_no_metadata(result.path)
    assert result.size == result.path.stat().st_size


@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 6, 7, 8])
def test_every_orientation_matches_exif_transpose(tmp_path: Path, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(photo_with_marker((120, 80)), "JPEG", quality=95, exif=exif)
    with Image.open(io.BytesIO(data)) as original:
        expected = ImageOps.exif_transpose(original)
    result = run(data, tmp_path)
    with Image.open(result.path) as out:
        assert out.size == expected.size
        corners = [(5, 5), (out.width - 6, 5), (5, out.height - 6), (out.width - 6, out.height - 6)]
        assert [is_red(out.getpixel(c)) for c in corners] == [is_red(expected.getpixel(c)) for c in corners]


def test_png_text_and_exif_chunks_are_stripped(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret-camera")
    exif = Image.Exif()
    exif[0x010F] = "secret-camera"
    data = encode(Image.new("RGB", (64, 64), BLUE), "PNG", pnginfo=info, exif=exif)
    result = run(data, tmp_path)
    assert result.content_type == "image/jpeg"
    assert_no_metadata(result.path)


def test_icc_profile_is_converted_to_srgb_and_dropped(tmp_path: Path) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(Image.new("RGB", (64, 64), (200, 120, 40)), "JPEG", quality=95, icc_profile=srgb)
    result = run(data, tmp_path)
    with Image.open(result.path) as out:
        assert "icc_profile" not in out.info
        r, g, b = out.getpixel((32, 32))
        assert abs(r - 200) < 8 and abs(g - 120) < 8 and abs(b - 40) < 8


def test_unusable_icc_profile_is_ignored(tmp_path: Path) -> None:
    data = encode(Image.new("RGB", (64, 64), (200, 120, 40)), "JPEG", icc_profile=b"not a profile" * 10)
    result = run(data, tmp_path)
    with Image.open(result.path) as out:
        assert "icc_profile" not in out.info


# --- media type ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        encode(Image.new("RGB", (8, 8)), "GIF"),
        b"%PDF-1.7\n1 0 obj<<>>endobj\n",
        b"just some text pretending to be a JPEG",
        b"",
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",  # HEIC: recognised, not supported
        encode(Image.new("RGB", (8, 8)), "BMP"),
        encode(Image.new("RGB", (8, 8)), "TIFF"),
    ],
    ids=["gif", "pdf", "text", "empty", "heic", "bmp", "tiff"],
)
def test_non_images_are_unsupported_media_type(tmp_path: Path, data: bytes) -> None:
    source = tmp_path / "photo.jpg"  # the name (and any declared type) says JPEG; the bytes decide
    source.write_bytes(data)
    with pytest.raises(UnsupportedMediaType) as info:
        process_image(source, max_pixels=MAX_PIXELS)
    assert (info.value.status, info.value.code) == (415, "unsupported_media_type")
    with pytest.raises(UnsupportedMediaType):
        verify_image(source, MAX_PIXELS)


def test_heic_error_names_heic(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMediaType, match="HEIC"):
        run(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", tmp_path)


# --- guards ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", [8000, 30000])
def test_bomb_header_is_refused_before_decoding(tmp_path: Path, side: int) -> None:
    """8000^2 is caught by our budget check; 30000^2 already by Pillow's open(); both map the same."""
    data = png_bomb(side, side, real_data=False)
    assert len(data) < 200
    with pytest.raises(TooManyPixels) as info:
        run(data, tmp_path)
    assert (info.value.status, info.value.code) == (422, "image_too_many_pixels")


def test_real_decompression_bomb_is_refused_fast(tmp_path: Path) -> None:
    """8000 x 8000 pixels (64 M, under Pillow's own limits) in ~10 KB of zlib: refused, never inflated."""
    data = png_bomb(8000, 8000, real_data=True)
    assert len(data) < 500_000
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    started = time.monotonic()
    with pytest.raises(TooManyPixels):
        process_image(path, max_pixels=MAX_PIXELS)
    with pytest.raises(TooManyPixels):
        verify_image(path, MAX_PIXELS)
    assert time.monotonic() - started < 1.0


def test_pillow_own_bomb_error_is_mapped(tmp_path: Path) -> None:
    """Beyond 2x Image.MAX_IMAGE_PIXELS Pillow raises in open(); still image_too_many_pixels."""
    with pytest.raises(TooManyPixels):
        run(png_bomb(100_000, 100_000, real_data=False), tmp_path, max_pixels=10**12)


def test_lower_pixel_budget(tmp_path: Path) -> None:
    data = encode(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(TooManyPixels):
        run(data, tmp_path, max_pixels=9_999)
    assert run(data, tmp_path, max_pixels=10_000).width == 100


def test_truncated_jpeg_is_invalid(tmp_path: Path) -> None:
    noisy = Image.effect_noise((400, 300), 80).convert("RGB")
    data = encode(noisy, "JPEG", quality=90)
    truncated = data[: len(data) // 2]
    with pytest.raises(InvalidImage) as info:
        run(truncated, tmp_path)
    assert (info.value.status, info.value.code) == (422, "invalid_image")
    path = tmp_path / "t.jpg"
    path.write_bytes(truncated)
    with pytest.raises(InvalidImage):
        verify_image(path, MAX_PIXELS)


@pytest.mark.parametrize(
    "data",
    [b"\xff\xd8\xff" + b"\x00" * 100, b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, b"RIFF\x00\x00\x00\x00WEBPVP8 zz"],
    ids=["jpeg", "png", "webp"],
)
def test_corrupt_files_with_valid_magic_are_invalid(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(InvalidImage):
        run(data, tmp_path)


def test_no_temp_file_left_on_failure(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(InvalidImage):
        run(b"\xff\xd8\xff" + b"\x00" * 100, tmp_path, dest_dir=out_dir)
    assert list(out_dir.iterdir()) == []


# --- sizes and formats -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [((4000, 3000), (2048, 1536)), ((3000, 4000), (1536, 2048)), ((800, 600), (800, 600))],
)
def test_downscale_to_long_side(tmp_path: Path, size: tuple[int, int], expected: tuple[int, int]) -> None:
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    result = run(encode(img, "JPEG", quality=85), tmp_path)
    assert (result.width, result.height) == expected
    with Image.open(result.path) as out:
        assert out.size == expected
        assert out.format == "JPEG"


def test_custom_long_side(tmp_path: Path) -> None:
    result = run(encode(Image.new("RGB", (1000, 500)), "PNG"), tmp_path, max_long_side=256)
    assert (result.width, result.height) == (256, 128)


def test_png_with_alpha_stays_png_with_alpha(tmp_path: Path) -> None:
    img = Image.new("RGBA", (300, 200), (*BLUE, 255))
    ImageDraw.Draw(img).rectangle((0, 0, 99, 99), fill=(0, 0, 0, 0))
    result = run(encode(img, "PNG"), tmp_path)
    assert (result.content_type, result.extension) == ("image/png", "png")
    with Image.open(result.path) as out:
        assert out.mode == "RGBA"
        assert out.getpixel((10, 10))[3] == 0
        assert out.getpixel((250, 150)) == (*BLUE, 255)


def test_opaque_alpha_is_flattened_to_jpeg(tmp_path: Path) -> None:
    result = run(encode(Image.new("RGBA", (64, 64), (*RED, 255)), "PNG"), tmp_path)
    assert result.content_type == "image/jpeg"


def test_palette_png_with_transparency(tmp_path: Path) -> None:
    img = Image.new("P", (32, 32), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.paste(0, (0, 0, 8, 8))
    result = run(encode(img, "PNG", transparency=0), tmp_path)
    assert result.content_type == "image/png"
    with Image.open(result.path) as out:
        assert out.getpixel((2, 2))[3] == 0


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    img = Image.new("I;16", (32, 32), 32768)  # mid grey in 16 bits
    result = run(encode(img, "PNG"), tmp_path)
    with Image.open(result.path) as out:
        r, g, b = out.getpixel((16, 16))
        assert 120 <= r <= 136 and r == g == b


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    result = run(encode(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG"), tmp_path)
    with Image.open(result.path) as out:
        assert out.mode == "RGB"
        assert is_red(out.getpixel((32, 32)))


def test_webp_is_reencoded_as_jpeg(tmp_path: Path) -> None:
    result = run(encode(Image.new("RGB", (300, 200), RED), "WEBP", quality=90), tmp_path)
    assert (result.content_type, result.width, result.height) == ("image/jpeg", 300, 200)
    with Image.open(result.path) as out:
        assert out.format == "JPEG"
        assert is_red(out.getpixel((150, 100)))


def test_webp_with_alpha_becomes_png(tmp_path: Path) -> None:
    img = Image.new("RGBA", (64, 64), (*RED, 0))
    result = run(encode(img, "WEBP", lossless=True), tmp_path)
    assert result.content_type == "image/png"


def test_file_object_source(tmp_path: Path) -> None:
    buffer = io.BytesIO(encode(Image.new("RGB", (50, 40), RED), "PNG"))
    buffer.seek(10)  # read from the start regardless of the position
    result = process_image(buffer, max_pixels=MAX_PIXELS, dest_dir=tmp_path)
    assert (result.width, result.height) == (50, 40)
    assert result.path.parent == tmp_path


# --- verify_image ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "content_type"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")]
)
def test_verify_image(tmp_path: Path, fmt: str, content_type: str) -> None:
    path = tmp_path / "result"
    path.write_bytes(encode(Image.new("RGB", (120, 90), BLUE), fmt))
    assert verify_image(path, MAX_PIXELS) == (content_type, 120, 90)
    with pytest.raises(TooManyPixels):
        verify_image(path, 100)


# --- async front and its concurrency bound ---------------------------------------------------------------


async def test_processor_runs_off_loop_with_bounded_concurrency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    active = peak = 0
    lock = threading.Lock()
    real = images_module.process_image

    def tracked(*args: object, **kwargs: object) -> ProcessedImage:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            time.sleep(0.05)
            return real(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(images_module, "process_image", tracked)
    processor = ImageProcessor(max_pixels=MAX_PIXELS, concurrency=2, processes=False, dest_dir=tmp_path)
    sources = []
    for i in range(6):
        path = tmp_path / f"in{i}.png"
        path.write_bytes(encode(Image.new("RGB", (64, 64), RED), "PNG"))
        sources.append(path)
    results = await asyncio.gather(*(processor.process(p) for p in sources))
    assert peak == 2
    assert len({r.path for r in results}) == 6
    assert await processor.verify(results[0].path) == ("image/jpeg", 64, 64)


async def test_processor_decodes_in_pool_processes(tmp_path: Path) -> None:
    """The default: each photo decoded in a process of the shared pool (the GIL is not held by the event loop's
    process); intake errors come back as the same typed errors."""
    processor = ImageProcessor(max_pixels=MAX_PIXELS, concurrency=2, dest_dir=tmp_path)
    source = tmp_path / "in.jpg"
    source.write_bytes(encode(Image.new("RGB", (640, 320), RED), "JPEG"))
    results = await asyncio.gather(*(processor.process(source) for _ in range(4)))
    assert {(r.width, r.height, r.content_type) for r in results} == {(640, 320, "image/jpeg")}
    pool = images_module._POOL
    assert pool is not None and all(pid != os.getpid() for pid in pool._processes)
    broken = tmp_path / "broken.jpg"
    whole = source.read_bytes()
    broken.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InvalidImage):
        await processor.process(broken)


def test_processor_from_settings(make_settings) -> None:
    settings = make_settings(max_image_pixels=1_000_000, max_long_side=1024)
    processor = ImageProcessor.from_settings(settings, concurrency=3)
    assert (processor.max_pixels, processor.max_long_side, processor.concurrency) == (1_000_000, 1024, 3)


@pytest.mark.parametrize("when", ["working", "still starting"])
def test_pool_processes_die_with_their_parent(tmp_path: Path, when: str) -> None:
    """A worker killed with SIGKILL (no atexit, no shutdown) takes its image processes with it — also when it is
    killed while they are still starting (a worker killed right after its start warmed the pool)."""
    source = tmp_path / "in.png"
    source.write_bytes(encode(Image.new("RGB", (64, 64), RED), "PNG"))
    use = f"asyncio.run(p.process({str(source)!r}))" if when == "working" else "p.warm_up()"
    script = (
        "import asyncio, sys\n"
        "from photobot.intake import images\n"
        f"p = images.ImageProcessor(max_pixels=10**6, concurrency=2, dest_dir={str(tmp_path)!r})\n"
        f"{use}\n"
        "print(*images._POOL._processes, flush=True)\n"
        "sys.stdin.read()\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        children = [int(pid) for pid in parent.stdout.readline().split()]
        assert children and all(_alive(pid) for pid in children)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in children if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_pool_processes_import_no_web_stack(tmp_path: Path) -> None:
    """What an image process imports to run `process_image` (the pool pickles the function by its module): the
    intake, Pillow and multiprocessing, not the web stack or asyncio; each process of the pool pays for every
    module in its RSS (bench/memory.py, docs/design-notes.md)."""
    script = (
        "import sys\nimport photobot.intake.images\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    loaded = set(done.stdout.split())
    assert "PIL" in loaded
    assert not loaded & {"starlette", "anyio", "asyncio", "httpx", "sqlalchemy", "pydantic", "ssl"}, loaded
