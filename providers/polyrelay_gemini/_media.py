"""Media inputs: ``data:`` URIs, MIME types from file extensions, URL kinds, and bounded downloads for inlining."""

from __future__ import annotations

import base64
import posixpath
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import unquote_to_bytes, urlsplit

from polyrelay.errors import DeadlineExceeded, InvalidRequest, PolyrelayError, UpstreamError
from polyrelay_gemini._wire import Blob

if TYPE_CHECKING:
    from polyrelay.transport import Timeouts, Transport

__all__ = [
    "FILE_URI_MIME_TYPES",
    "UrlKind",
    "download",
    "guess_mime",
    "parse_data_uri",
    "url_kind",
]

#: Extension → MIME type for media Gemini reads. A fixed table (not the ``mimetypes`` module, whose answers
#: depend on the host's /etc/mime.types).
_EXTENSIONS: Final[Mapping[str, str]] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".pdf": "application/pdf",
    ".json": "application/json",
    ".txt": "text/plain",
    ".md": "text/md",
    ".html": "text/html",
    ".htm": "text/html",
    ".css": "text/css",
    ".csv": "text/csv",
    ".xml": "text/xml",
    ".rtf": "text/rtf",
    ".js": "text/javascript",
    ".py": "text/x-python",
    ".wav": "audio/wav",
    ".mp3": "audio/mp3",
    ".aiff": "audio/aiff",
    ".aac": "audio/aac",
    ".ogg": "audio/ogg",
    ".flac": "audio/flac",
    ".m4a": "audio/mp4",
    ".opus": "audio/ogg",
    ".mp4": "video/mp4",
    ".mpeg": "video/mpeg",
    ".mpg": "video/mpeg",
    ".mov": "video/mov",
    ".avi": "video/avi",
    ".flv": "video/x-flv",
    ".webm": "video/webm",
    ".wmv": "video/wmv",
    ".3gp": "video/3gpp",
}

#: MIME types Gemini accepts as ``fileData`` for a public HTTPS URL it fetches itself (the allow-list vercel/ai
#: uses for the Gemini API); anything else is downloaded and inlined.
FILE_URI_MIME_TYPES: Final = frozenset(
    {
        "text/html",
        "text/css",
        "text/plain",
        "text/xml",
        "text/csv",
        "text/rtf",
        "text/javascript",
        "application/json",
        "application/pdf",
        "image/bmp",
        "image/jpeg",
        "image/png",
        "image/webp",
        "video/mp4",
        "video/mpeg",
        "video/mov",
        "video/avi",
        "video/x-flv",
        "video/webm",
        "video/wmv",
        "video/3gpp",
    }
)

#: Audio formats of ``input_audio.format`` → MIME type (Gemini's spellings: audio/wav, audio/mp3).
AUDIO_FORMATS: Final[Mapping[str, str]] = {
    "wav": "audio/wav",
    "mp3": "audio/mp3",
    "aiff": "audio/aiff",
    "aac": "audio/aac",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "flac": "audio/flac",
    "m4a": "audio/mp4",
    "webm": "audio/webm",
    "pcm16": "audio/pcm",
    "pcm": "audio/pcm",
}

_YOUTUBE_HOSTS: Final = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com", "youtu.be", "music.youtube.com"})
_FILES_API_HOST: Final = "generativelanguage.googleapis.com"
# YouTube URLs are sent as video; the mime type is what the API expects for them.
YOUTUBE_MIME: Final = "video/mp4"

UrlKind = Literal["youtube", "files_api", "gcs", "http", "https"]


def guess_mime(name_or_url: str) -> str | None:
    """MIME type from the file extension of a name or URL path (``None`` when unknown)."""
    path = urlsplit(name_or_url).path if "://" in name_or_url else name_or_url
    ext = posixpath.splitext(path.lower())[1]
    return _EXTENSIONS.get(ext)


def url_kind(url: str) -> UrlKind | None:
    """What a media URL is, for choosing between ``fileData`` and downloading (``None``: not a usable URL)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme == "gs":
        return "gcs"
    if scheme not in ("http", "https") or not host:
        return None
    if host in _YOUTUBE_HOSTS:
        return "youtube"
    if host == _FILES_API_HOST and "/files/" in parts.path:
        return "files_api"
    return "https" if scheme == "https" else "http"


def parse_data_uri(uri: str, path: str) -> Blob:
    """``data:<mime>[;base64],<data>`` → :class:`Blob` (non-base64 data is percent-decoded and encoded)."""
    head, sep, data = uri.partition(",")
    if not sep or not head.lower().startswith("data:"):
        raise InvalidRequest("is not a valid data: URI (expected data:<mime>;base64,<data>)", path=path)
    params = head[5:].split(";")
    mime = params[0].strip().lower() or "text/plain"
    if "/" not in mime:
        raise InvalidRequest(f"the data: URI has an invalid MIME type {params[0]!r}", path=path)
    if any(p.strip().lower() == "base64" for p in params[1:]):
        return Blob(mime_type=mime, data=data.strip())
    return Blob(mime_type=mime, data=base64.b64encode(unquote_to_bytes(data)).decode("ascii"))


async def download(
    transport: Transport,
    url: str,
    *,
    path: str,
    provider: str,
    timeouts: Timeouts,
    deadline: float | None,
    max_bytes: int,
) -> Blob:
    """Fetch ``url`` (no credentials are sent) and return it base64-encoded, refusing more than ``max_bytes``.

    Failures are the caller's input problem: :class:`InvalidRequest` naming ``path``.
    """
    try:
        resp = await transport.request("GET", url, provider=provider, timeouts=timeouts, deadline=deadline)
    except DeadlineExceeded:
        raise  # the call's whole budget is gone: not a problem with the URL
    except UpstreamError as exc:
        raise InvalidRequest(f"could not download the media URL: {exc.message}", path=path) from exc
    try:
        if resp.status != 200:
            raise InvalidRequest(f"downloading the media URL failed with HTTP {resp.status}", path=path)
        length = resp.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            raise InvalidRequest(
                f"the media URL's content ({int(length)} bytes) exceeds max_inline_bytes={max_bytes}", path=path
            )
        received = bytearray()
        chunks = resp.iter_bytes()
        try:
            async for chunk in chunks:
                received += chunk
                if len(received) > max_bytes:
                    raise InvalidRequest(f"the media URL's content exceeds max_inline_bytes={max_bytes}", path=path)
        finally:
            await chunks.aclose()  # releases the connection, or drops it when we stopped early
    except PolyrelayError as exc:
        resp.close()
        if isinstance(exc, InvalidRequest | DeadlineExceeded):
            raise
        raise InvalidRequest(f"could not download the media URL: {exc}", path=path) from exc
    content_type = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    mime = content_type if content_type and content_type != "application/octet-stream" else guess_mime(url)
    if not mime:
        raise InvalidRequest("the media URL's content type is unknown", path=path)
    return Blob(mime_type=mime, data=base64.b64encode(bytes(received)).decode("ascii"))
