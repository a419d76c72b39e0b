"""Turn an untrusted upload into a clean, bounded image file: detect, guard, orient, strip, shrink, re-encode.

The steps, in order, and why:
1. Sniff the first bytes (`sniff`): only JPEG, PNG and WebP, and Pillow is told to use that one decoder only.
2. Read width and height from the header (Image.open is lazy) and refuse more than `max_pixels` *before*
   any pixel is decoded: a 50 KB PNG can claim 30000 x 30000 pixels (a decompression bomb).
3. JPEGs are decoded at a reduced scale when that is enough for the target size (DCT scaling, `draft`), so a
   big photo never costs its full-size bitmap.
4. Colour: an embedded ICC profile is converted to sRGB and then dropped (what image models assume); when the
   profile is unusable the pixels are kept as they are. 16-bit and palette images become 8-bit RGB(A).
5. Downscale so the long side is at most `max_long_side` (bicubic after a box reduction), then apply the EXIF
   orientation (the same transform table as `ImageOps.exif_transpose`) on the small image.
6. Re-encode with no metadata at all (no EXIF/GPS, XMP, ICC, comments, text chunks): JPEG quality 90 for
   everything opaque; PNG only when the image really uses transparency (an alpha channel that is fully
   opaque is flattened to JPEG). WebP input is re-encoded as JPEG or PNG by the same rule.
7. Write the result to a temp file; the caller moves it to storage and deletes it.

Steps 3-7 are CPU bound and run in the worker's submit step, never in a request: the intake only streams the
upload to storage and checks what is cheap and decisive (`inspect`: type and header dimensions). `ImageProcessor`
runs the pipeline in a process pool sized to the cores (a thread would hold the GIL for the whole decode), at most
`concurrency` at a time, so a burst queues instead of taking `concurrency x max_pixels x 4` bytes at once.
Result verification (`verify`) has its own slots: finishing jobs never wait behind submissions.
"""

from __future__ import annotations

import atexit
import io
import multiprocessing
import os
import signal
import struct
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from PIL import Image, ImageCms, UnidentifiedImageError

from photobot.intake.errors import ImageError, InvalidImage, TooManyPixels, UnsupportedMediaType
from photobot.intake.pngcheck import check_png
from photobot.intake.sniff import JPEG, PNG, SNIFF_BYTES, Format, sniff

if TYPE_CHECKING:
    from photobot.settings import Settings

Source = str | os.PathLike[str] | IO[bytes]

JPEG_QUALITY = 90
_ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transpose that makes the image upright (as in PIL.ImageOps.exif_transpose).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# What a corrupt or truncated file can make Pillow raise while opening or decoding.
_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError)
_SRGB = ImageCms.createProfile("sRGB")


@dataclass(frozen=True)
class ProcessedImage:
    """The re-encoded image on disk (a temp file the caller owns and must move or delete)."""

    path: Path
    content_type: str  # image/jpeg or image/png
    width: int
    height: int
    size: int
    extension: str  # "jpg" or "png", without the dot


@contextmanager
def open_checked(source: Source, max_pixels: int) -> Iterator[tuple[Image.Image, Format]]:
    """Open `source` lazily with only its sniffed decoder and check the pixel budget from the header.

    Pillow's own bomb errors (raised by `open` for absurd sizes) map to TooManyPixels as well; any other
    failure to parse maps to InvalidImage. File objects are read from their start.
    """
    if not isinstance(source, str | os.PathLike):
        source.seek(0)
        head = source.read(SNIFF_BYTES)
        source.seek(0)
    else:
        with open(source, "rb") as f:
            head = f.read(SNIFF_BYTES)
    fmt = sniff(head)
    try:
        img = Image.open(source, formats=[fmt.pillow_format])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooManyPixels(f"The image has more than {max_pixels} pixels.") from None
    except _DECODE_ERRORS:
        raise InvalidImage("The image could not be read.") from None
    with img:
        width, height = img.size
        if width < 1 or height < 1:
            raise InvalidImage("The image has no pixels.")
        if width * height > max_pixels:
            raise TooManyPixels(f"{width}x{height} is more than {max_pixels} pixels.")
        yield img, fmt


def inspect(source: Source, max_pixels: int) -> tuple[Format, int, int]:
    """(format, width, height) from the first bytes and the header alone: what intake checks before it answers.

    Refuses what is not JPEG/PNG/WebP (415) and more pixels than `max_pixels` (422); reads no pixel data, so it
    costs well under a millisecond whatever the photo's size.
    """
    with open_checked(source, max_pixels) as (img, fmt):
        return fmt, img.width, img.height


def verify_image(source: Source, max_pixels: int) -> tuple[str, int, int]:
    """(content type, width, height) of an image that really decodes; nothing is re-encoded.

    Used on provider results: sniffed type, pixel budget checked from the header, then the whole image data
    decoded so a truncated or corrupt file is caught before it is stored and shown to a guest — in bounded memory:
    a PNG is checked chunk by chunk and inflated without keeping its pixels (`pngcheck`), a JPEG is decoded at
    1/8 scale (libjpeg still reads every entropy-coded block), WebP is decoded whole.
    """
    with open_checked(source, max_pixels) as (img, fmt):
        width, height = img.size
        try:
            if fmt is PNG:
                if isinstance(source, str | os.PathLike):
                    with open(source, "rb") as handle:
                        check_png(handle)
                else:
                    source.seek(0)
                    check_png(source)
                return fmt.content_type, width, height
            if fmt is JPEG:
                img.draft(img.mode, (max(1, width // 8), max(1, height // 8)))
            img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise TooManyPixels(f"The image has more than {max_pixels} pixels.") from None
        except _DECODE_ERRORS:
            raise InvalidImage("The image is truncated or corrupt.") from None
        return fmt.content_type, width, height


def process_image(
    source: Source,
    *,
    max_pixels: int,
    max_long_side: int = 2048,
    jpeg_quality: int = JPEG_QUALITY,
    dest_dir: str | os.PathLike[str] | None = None,
) -> ProcessedImage:
    """Synchronous pipeline (see the module docstring); call it through `ImageProcessor` from async code."""
    with open_checked(source, max_pixels) as (img, fmt):
        try:
            orientation = _orientation(img)
            if fmt is JPEG:  # DCT scaling: decode at the smallest 1/2, 1/4 or 1/8 scale still >= the target
                img.draft(None, _fit(img.size, max_long_side))
            img.load()
            clean = _to_srgb_8bit(img)
            # bicubic with a reducing gap: a box reduction first, then bicubic; indistinguishable from Lanczos at
            # these ratios and about half its cost (docs/benchmarks.md)
            clean.thumbnail((max_long_side, max_long_side), Image.Resampling.BICUBIC, reducing_gap=2.0)
            if orientation in _TRANSPOSE:
                clean = clean.transpose(_TRANSPOSE[orientation])
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise TooManyPixels(f"The image has more than {max_pixels} pixels.") from None
        except _DECODE_ERRORS:
            raise InvalidImage("The image is truncated or corrupt.") from None
    return _write(clean, jpeg_quality=jpeg_quality, dest_dir=dest_dir)


def _process_in_child(source: str, options: dict[str, Any]) -> ProcessedImage | tuple[str, str | None]:
    """`process_image` in a pool process. Intake errors come back as (code, detail): they are Problems, whose
    constructors do not survive pickling."""
    try:
        return process_image(source, **options)
    except ImageError as exc:
        return exc.error_code, exc.detail


_ERRORS_BY_CODE: dict[str, type[ImageError]] = {
    cls.error_code: cls for cls in (InvalidImage, TooManyPixels, UnsupportedMediaType)
}
_POOL: ProcessPoolExecutor | None = None


def _warm() -> None:
    """Nothing: submitting it makes the pool start a process."""


def _die_with_parent(parent_pid: int) -> None:
    """Pool initializer: on Linux, the kernel kills this process when its parent dies (a SIGKILLed worker must not
    leave its image processes behind). A parent that died while this process was still starting (before the
    request was made) is seen by the reparenting, and this process leaves at once."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:
        os._exit(0)


def _shared_pool(workers: int) -> ProcessPoolExecutor:
    """One pool per OS process, made on first use (web processes never make one) and shared by every runtime in
    it: processes are a machine resource, and tests open many runtimes in one process. Spawned, not forked: a
    fork of this process would copy its threads' locks and its sockets."""
    global _POOL
    if _POOL is None:
        context = multiprocessing.get_context("spawn")
        _POOL = ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_die_with_parent, initargs=(os.getpid(),)
        )
        atexit.register(_POOL.shutdown, wait=False, cancel_futures=True)
    return _POOL


class ImageProcessor:
    """Async front for `process_image` (a process pool, `concurrency` at a time; threads with `processes=False`)
    and `verify_image` (threads, its own `concurrency` slots). `concurrency` defaults to the core count."""

    def __init__(
        self,
        *,
        max_pixels: int,
        max_long_side: int = 2048,
        jpeg_quality: int = JPEG_QUALITY,
        concurrency: int | None = None,
        processes: bool = True,
        dest_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.max_pixels = max_pixels
        self.max_long_side = max_long_side
        self.jpeg_quality = jpeg_quality
        self.dest_dir = dest_dir
        self.in_processes = processes
        # asyncio is imported where it is used, not at the top: the image processes import this module for
        # `process_image` and never run a loop, and asyncio (with ssl) would add ~11 MB to each of them
        import asyncio

        self.concurrency = concurrency or (os.cpu_count() or 2)
        self._slots = asyncio.Semaphore(self.concurrency)
        self._verify_slots = asyncio.Semaphore(self.concurrency)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        concurrency: int | None = None,
        dest_dir: str | os.PathLike[str] | None = None,
    ) -> ImageProcessor:
        return cls(
            max_pixels=settings.max_image_pixels,
            max_long_side=settings.max_long_side,
            concurrency=concurrency or settings.image_workers or None,
            processes=settings.image_workers != 0,
            dest_dir=dest_dir,
        )

    async def process(self, source: str | os.PathLike[str]) -> ProcessedImage:
        options: dict[str, Any] = {"max_pixels": self.max_pixels, "max_long_side": self.max_long_side,
                                   "jpeg_quality": self.jpeg_quality, "dest_dir": self.dest_dir}  # fmt: skip
        import asyncio

        async with self._slots:
            if not self.in_processes:
                return await asyncio.to_thread(process_image, source, **options)
            loop = asyncio.get_running_loop()
            pool = _shared_pool(self.concurrency)
            done = await loop.run_in_executor(pool, _process_in_child, os.fspath(source), options)
        if isinstance(done, ProcessedImage):
            return done
        code, detail = done
        raise _ERRORS_BY_CODE.get(code, InvalidImage)(detail)

    def warm_up(self) -> None:
        """Start the pool's processes now (a worker calls this at start): spawning and importing Pillow takes a
        second or more, which the first guests' photos should not wait for."""
        if self.in_processes:
            pool = _shared_pool(self.concurrency)
            for _ in range(self.concurrency):
                pool.submit(_warm)

    async def verify(self, source: Source) -> tuple[str, int, int]:
        import asyncio

        async with self._verify_slots:
            return await asyncio.to_thread(verify_image, source, self.max_pixels)


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation (1 when absent or unreadable: broken EXIF must not reject a photo)."""
    try:
        value = img.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) else 1


def _fit(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, long_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _has_transparency(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info


def _to_srgb_8bit(img: Image.Image) -> Image.Image:
    """RGB, or RGBA when some pixel is not fully opaque; colour-managed to sRGB when a profile is usable."""
    if img.mode.startswith("I"):  # 16-bit (or 32-bit integer) greyscale: scale to 8 bits, don't clip
        img = img.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    alpha = _has_transparency(img)
    if alpha and img.mode != "RGBA":
        img = img.convert("RGBA")
    target = "RGBA" if alpha else "RGB"
    out: Image.Image | None = None
    icc = img.info.get("icc_profile")
    if icc and img.mode in ("RGB", "RGBA", "CMYK", "L"):
        try:
            source_profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            out = ImageCms.profileToProfile(img, source_profile, _SRGB, outputMode=target)
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            out = None  # an unusable profile: keep the pixels as they are
    if out is None:
        out = img.convert(target)
    if alpha and out.getchannel("A").getextrema()[0] == 255:
        out = out.convert("RGB")  # an alpha channel nobody uses: flatten, JPEG is far smaller
    return out


def _write(img: Image.Image, *, jpeg_quality: int, dest_dir: str | os.PathLike[str] | None) -> ProcessedImage:
    """Encode with no metadata into a new temp file; remove it again if encoding fails."""
    fmt = PNG if img.mode == "RGBA" else JPEG
    img.info = {}  # nothing from the input (EXIF, XMP, ICC, comments, text) may ride along
    fd, name = tempfile.mkstemp(prefix="photobot-", suffix=f".{fmt.extension}", dir=dest_dir)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            if fmt is PNG:
                img.save(out, format="PNG", compress_level=6)
            else:
                img.save(out, format="JPEG", quality=jpeg_quality)
        size = path.stat().st_size
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return ProcessedImage(
        path=path,
        content_type=fmt.content_type,
        width=img.width,
        height=img.height,
        size=size,
        extension=fmt.extension,
    )
