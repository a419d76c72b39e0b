"""Rendering for the HTML pages: one Jinja2 environment, the page strings per language, event branding.

Pages are server-rendered and work without JavaScript; the scripts under `static/` only add live updates,
sharing and the kiosk camera. Static files are referenced with a content hash (`?v=…`), so they can be cached
for a long time and still change on deploy.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from photobot.db.models import Event

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_PREFIX = "/pages-static"

# Security headers for every page: scripts only from us, no framing, no referrer leaking the page id.
# Images may come from the object store (presigned S3 URLs) and the organiser's logo host.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: https: http:; "
    "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

_COLOR = re.compile(r"^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,20})$")
DEFAULT_COLOR = "#5b3df5"

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "your_photo": "Your photo",
        "pending_title": "Your photo is on its way",
        "pending_text": "We are turning your picture into art. It usually takes under a minute.",
        "keep_open": "Keep this page open: the photo appears here by itself.",
        "status_pending": "Waiting in line…",
        "status_processing": "Creating your photo…",
        "status_completed": "Your photo is ready!",
        "status_failed": "Something went wrong.",
        "ready_title": "Your photo is ready",
        "photo_alt": "Your AI-styled photo",
        "download": "Download",
        "share": "Share",
        "share_text": "My photo from {title}",
        "kept_for": "This photo stays available for {days} days.",
        "failed_title": "Sorry, we could not make your photo",
        "failed_text": "This happens now and then. Please ask the booth staff to take another picture.",
        "not_found_title": "Photo not found",
        "not_found_text": "This link does not lead to a photo. Please check it, or scan the QR code again.",
        "expired_title": "This photo has expired",
        "expired_text": "Photos are kept for {days} days and then deleted for your privacy.",
        "forbidden_title": "This link is not valid",
        "forbidden_text": "The gallery link is wrong or has expired. Ask the organiser for a new one.",
        "gallery": "Gallery",
        "gallery_empty": "No photos yet. They appear here as soon as they are ready.",
        "newer": "Newer photos",
        "older": "Older photos",
        "page_n": "Page {n}",
        "live_wall": "Live wall",
        "photo_n": "Photo {n}",
        "connection_lost": "Connection lost, retrying…",
        "blocked_title": "We could not use this photo",
        "blocked_text": (
            "The AI declined to restyle this picture. That sometimes happens with photos it finds unclear or "
            "unsuitable. Please ask the booth staff to take another one: you were not charged."
        ),
        "forgotten_title": "This photo was deleted",
        "forgotten_text": "It was deleted at the guest's request, together with the contact details stored with it.",
        "consent_label": "I agree that my photo is turned into AI art and kept for {days} days.",
    },
    "es": {
        "your_photo": "Tu foto",
        "pending_title": "Tu foto está en camino",
        "pending_text": "Estamos convirtiendo tu imagen en arte. Suele tardar menos de un minuto.",
        "keep_open": "Mantén esta página abierta: la foto aparecerá aquí sola.",
        "status_pending": "En la cola…",
        "status_processing": "Creando tu foto…",
        "status_completed": "¡Tu foto está lista!",
        "status_failed": "Algo salió mal.",
        "ready_title": "Tu foto está lista",
        "photo_alt": "Tu foto con estilo IA",
        "download": "Descargar",
        "share": "Compartir",
        "share_text": "Mi foto de {title}",
        "kept_for": "Esta foto estará disponible durante {days} días.",
        "failed_title": "Lo sentimos, no pudimos crear tu foto",
        "failed_text": "Pasa de vez en cuando. Pide al personal del fotomatón que tome otra foto.",
        "not_found_title": "Foto no encontrada",
        "not_found_text": "Este enlace no lleva a ninguna foto. Revísalo o vuelve a escanear el código QR.",
        "expired_title": "Esta foto ha caducado",
        "expired_text": "Las fotos se guardan {days} días y luego se borran por tu privacidad.",
        "forbidden_title": "Este enlace no es válido",
        "forbidden_text": "El enlace de la galería es incorrecto o ha caducado. Pide uno nuevo al organizador.",
        "gallery": "Galería",
        "gallery_empty": "Aún no hay fotos. Aparecerán aquí en cuanto estén listas.",
        "newer": "Fotos más recientes",
        "older": "Fotos anteriores",
        "page_n": "Página {n}",
        "live_wall": "Muro en vivo",
        "photo_n": "Foto {n}",
        "connection_lost": "Conexión perdida, reintentando…",
        "blocked_title": "No pudimos usar esta foto",
        "blocked_text": (
            "La IA no quiso transformar esta imagen. Pasa a veces con fotos que le parecen poco claras o "
            "inadecuadas. Pide al personal que tome otra: no se te cobró."
        ),
        "forgotten_title": "Esta foto fue eliminada",
        "forgotten_text": (
            "Se eliminó a petición de la persona invitada, junto con los datos de contacto guardados con ella."
        ),
        "consent_label": "Acepto que mi foto se convierta en arte con IA y se guarde {days} días.",
    },
    "id": {
        "your_photo": "Foto kamu",
        "pending_title": "Foto kamu sedang dibuat",
        "pending_text": "Kami sedang mengubah fotomu menjadi karya seni. Biasanya kurang dari satu menit.",
        "keep_open": "Biarkan halaman ini terbuka: foto akan muncul di sini dengan sendirinya.",
        "status_pending": "Menunggu giliran…",
        "status_processing": "Sedang membuat fotomu…",
        "status_completed": "Fotomu sudah siap!",
        "status_failed": "Terjadi kesalahan.",
        "ready_title": "Fotomu sudah siap",
        "photo_alt": "Foto bergaya AI milikmu",
        "download": "Unduh",
        "share": "Bagikan",
        "share_text": "Fotoku dari {title}",
        "kept_for": "Foto ini tersedia selama {days} hari.",
        "failed_title": "Maaf, fotomu gagal dibuat",
        "failed_text": "Kadang hal ini terjadi. Silakan minta petugas booth untuk memotret ulang.",
        "not_found_title": "Foto tidak ditemukan",
        "not_found_text": "Tautan ini tidak mengarah ke foto. Periksa lagi, atau pindai ulang kode QR.",
        "expired_title": "Foto ini sudah kedaluwarsa",
        "expired_text": "Foto disimpan selama {days} hari lalu dihapus demi privasimu.",
        "forbidden_title": "Tautan ini tidak valid",
        "forbidden_text": "Tautan galeri salah atau sudah kedaluwarsa. Minta tautan baru ke penyelenggara.",
        "gallery": "Galeri",
        "gallery_empty": "Belum ada foto. Foto akan muncul di sini begitu siap.",
        "newer": "Foto lebih baru",
        "older": "Foto lebih lama",
        "page_n": "Halaman {n}",
        "live_wall": "Dinding langsung",
        "photo_n": "Foto {n}",
        "connection_lost": "Koneksi terputus, mencoba lagi…",
        "blocked_title": "Kami tidak dapat memakai foto ini",
        "blocked_text": (
            "AI menolak mengubah foto ini. Kadang hal ini terjadi pada foto yang dianggap kurang jelas atau tidak "
            "sesuai. Silakan minta petugas booth memotret ulang: kamu tidak dikenai biaya."
        ),
        "forgotten_title": "Foto ini sudah dihapus",
        "forgotten_text": "Foto dihapus atas permintaan tamu, bersama data kontak yang tersimpan dengannya.",
        "consent_label": "Saya setuju fotoku diubah menjadi karya AI dan disimpan selama {days} hari.",
    },
}


def strings_for(language: str | None) -> dict[str, str]:
    lang = (language or "en").split("-")[0].lower()
    return STRINGS.get(lang, STRINGS["en"])


def text_on(color: str) -> str:
    """Black or white, whichever reads better on `color` (WCAG relative luminance); white for named colours."""
    hex_digits = color.lstrip("#")
    if not color.startswith("#") or len(hex_digits) not in (3, 4, 6, 8):
        return "#ffffff"
    if len(hex_digits) in (3, 4):
        hex_digits = "".join(c * 2 for c in hex_digits[:3])
    channels = [int(hex_digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#ffffff" if (1.05 / (luminance + 0.05)) >= ((luminance + 0.05) / 0.05) else "#111111"


@dataclass(frozen=True)
class Branding:
    title: str | None
    logo_url: str | None
    color: str
    footer: str | None
    lang: str

    @property
    def on_color(self) -> str:
        return text_on(self.color)

    @property
    def text_color(self) -> str:
        """The brand colour for text on white, unless it is too light to read (then the body text colour)."""
        return self.color if self.on_color == "#ffffff" else "#1b1830"

    @classmethod
    def of(cls, event: Event | None) -> Branding:
        if event is None:
            return cls(None, None, DEFAULT_COLOR, None, "en")
        color = event.primary_color if event.primary_color and _COLOR.match(event.primary_color) else DEFAULT_COLOR
        logo = event.logo_url if event.logo_url and event.logo_url.startswith(("https://", "http://")) else None
        lang = (event.language or "en").split("-")[0].lower()
        return cls(event.title or event.name, logo, color, event.footer_text, lang if lang in STRINGS else "en")


@cache
def _asset_version(name: str) -> str:
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:10]


def asset(name: str) -> str:
    return f"{STATIC_PREFIX}/{name}?v={_asset_version(name)}"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["asset"] = asset
    return env


def render(name: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    brand: Branding = context.setdefault("brand", Branding.of(None))
    context.setdefault("t", strings_for(brand.lang))
    html = environment().get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})
