"""What a zip header says about a member beyond its bytes: its real name and its time.

LMS downloads are zips made by PHP (Moodle), Ruby (Canvas) or a desktop's "compress" menu, and
they disagree on both:

- **names**: the format says cp437 unless a flag says UTF-8; many tools write UTF-8 without the
  flag, which :mod:`zipfile` (rightly, by the format) decodes as cp437: ``Renée`` becomes
  ``Ren├⌐e``. :func:`member_name` undoes that, and reads Info-ZIP's "Unicode path" field;
- **times**: the header's date and time are local, without a zone; Info-ZIP's "extended
  timestamp" field, when present, is UTC. :func:`member_time` prefers the latter.
"""

from __future__ import annotations

import struct
import unicodedata
import zipfile
import zlib
from datetime import datetime, timezone, tzinfo

UTF8_FLAG = 0x800  # general purpose bit 11: the name is UTF-8
UNICODE_PATH = 0x7075  # Info-ZIP: version, crc32 of the header's name, the name in UTF-8
EXTENDED_TIME = 0x5455  # Info-ZIP "UT": flags, then the modification time in UTC seconds


def _extra_fields(extra: bytes) -> dict[int, bytes]:
    """A zip header's extra fields by id (the first of each; a truncated one is dropped)."""
    fields, i = {}, 0
    while i + 4 <= len(extra):
        kind, size = struct.unpack("<HH", extra[i:i + 4])
        if i + 4 + size > len(extra):
            break
        fields.setdefault(kind, extra[i + 4:i + 4 + size])
        i += 4 + size
    return fields


def member_name(info: zipfile.ZipInfo) -> str:
    """A member's name as its author's system wrote it, in NFC.

    zipfile decodes it as UTF-8 when the header's UTF-8 flag is set, else as cp437. LMS zips
    (PHP's, Windows') often hold UTF-8 names *without* the flag, which cp437 turns into
    ``Ren├⌐e``: a name that re-encodes to valid UTF-8 is taken as UTF-8 (an honest cp437 name
    almost never does), or the UTF-8 copy of Info-ZIP's "Unicode path" field when it matches."""
    name = info.filename
    if not info.flag_bits & UTF8_FLAG:
        raw = info.orig_filename.encode("cp437", errors="replace")
        upath = _extra_fields(info.extra).get(UNICODE_PATH, b"")
        if len(upath) > 5 and upath[0] == 1 and struct.unpack("<I", upath[1:5])[0] == zlib.crc32(raw):
            name = upath[5:].decode("utf-8", errors="replace")
        else:
            try:
                name = raw.decode("utf-8")
            except UnicodeDecodeError:
                pass
    return unicodedata.normalize("NFC", name)


def member_time(info: zipfile.ZipInfo, zone: tzinfo | None) -> float | None:
    """When a member was last modified, as POSIX time: the UTC "extended timestamp" field when the
    zip has one, else the header's local date and time read in ``zone`` (UTC if None). None when
    the zip recorded no time (1980-01-01, the format's zero) or a broken one."""
    ut = _extra_fields(info.extra).get(EXTENDED_TIME, b"")
    if len(ut) >= 5 and ut[0] & 1:
        return float(struct.unpack("<I", ut[1:5])[0])
    if info.date_time[:3] <= (1980, 1, 1):
        return None
    try:
        return datetime(*info.date_time, tzinfo=zone or timezone.utc).timestamp()
    except ValueError:
        return None
