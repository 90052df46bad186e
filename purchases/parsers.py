"""The parsers of every API request body: bounded in size and nesting, so that a body the API
cannot read is a 400 naming the field (purchases.api_errors), never a memory sink or a 500."""

from __future__ import annotations

import io
import re
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, MultiPartParser

# No body of this API nests beyond two levels; a deeper one is refused before it is decoded
# (Python's decoder recurses, and thousands of levels raise RecursionError: a 500).
MAX_JSON_DEPTH = 32
# A string, skipped whole so that brackets inside it do not count (an unterminated one runs to
# the end: every string then matches at once, and the scan stays linear), or a bracket.
JSON_NESTING_TOKEN = re.compile(rb'"(?:[^"\\]+|\\.)*(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)


def json_depth_exceeds(raw: bytes, limit: int) -> bool:
    """Whether the JSON text `raw` opens more than `limit` arrays or objects inside each other
    (malformed text included: the decoder then refuses it)."""
    depth = 0
    for token in JSON_NESTING_TOKEN.finditer(raw):
        bracket = token.group()
        if bracket in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif bracket in (b"]", b"}"):
            depth -= 1
    return False


class LimitedJSONParser(JSONParser):
    """JSON bodies up to DATA_UPLOAD_MAX_MEMORY_SIZE and MAX_JSON_DEPTH levels of nesting; a
    larger or deeper one is a 400, not a memory sink or a RecursionError."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise ParseError(f"Request body is larger than {limit} bytes.")
        if not raw:
            return {}
        if json_depth_exceeds(raw, MAX_JSON_DEPTH):
            raise ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.")
        return super().parse(io.BytesIO(raw), media_type, parser_context)


class LimitedMultiPartParser(MultiPartParser):
    """Multipart forms (the browsable API's) up to DATA_UPLOAD_MAX_MEMORY_SIZE in all, files
    included: the limit Django applies to fields alone would let large uploads reach the disk."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        meta = parser_context["request"].META
        try:
            length = int(meta.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = limit + 1
        if length > limit:
            raise ParseError(f"Request body is larger than {limit} bytes.")
        return super().parse(stream, media_type, parser_context)
