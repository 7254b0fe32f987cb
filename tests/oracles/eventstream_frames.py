#!/usr/bin/env python3
"""Event-stream frames decoded by botocore, as test data for ringgate's frame reader.

ringgate reads Bedrock's `application/vnd.amazon.eventstream` frames with its own decoder
(src/dialect/bedrock/eventstream.rs). This script is the independent check: it builds frames
with `struct` and `zlib.crc32` (not with ringgate's code), has botocore's `EventStreamBuffer`
decode each one, and writes the frames (hex) with what botocore made of them to
src/dialect/bedrock/eventstream_frames.json. A Rust test (`botocore_reads_the_same_frames` in
src/dialect/bedrock/eventstream_botocore_tests.rs) decodes every frame there with ringgate's
reader and compares.

Three lists:
  valid     frames botocore decodes: their headers (the type number the frame used, and the
            value botocore gave) and payload; ringgate must give the same.
  rejected  frames botocore refuses (its exception is recorded); ringgate must refuse them too,
            for the reason in `fault`.
  stricter  frames botocore accepts but ringgate refuses on purpose (a total length below 16,
            a header value that runs past the headers' end, which botocore silently cuts short).

The script asserts what botocore does with every frame, so a botocore that changes its mind
fails here rather than going unnoticed.

Regenerate (from the repository root; written with botocore 1.44.18):

    python3 -m venv target/eventstream-venv
    target/eventstream-venv/bin/pip install botocore==1.44.18
    target/eventstream-venv/bin/python tests/oracles/eventstream_frames.py
"""

import base64
import json
import os
import random
import struct
import sys
import zlib

import botocore
from botocore.eventstream import EventStreamBuffer

OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..", "..", "src", "dialect", "bedrock", "eventstream_frames.json",
)


# --- building frames -----------------------------------------------------------------------------

def header(name, kind, value=None):
    """One header: name length u8, name, type u8, value."""
    if isinstance(name, str):
        name = name.encode()
    out = struct.pack(">B", len(name)) + name + struct.pack(">B", kind)
    if kind in (0, 1):
        return out
    fmt = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}.get(kind)
    if fmt:
        return out + struct.pack(fmt, value)
    if kind in (6, 7):
        if isinstance(value, str):
            value = value.encode()
        return out + struct.pack(">H", len(value)) + value
    if kind == 9:
        assert len(value) == 16
        return out + value
    raise ValueError(kind)


def frame(headers, payload, total=None, headers_length=None):
    """A frame with both CRCs right; `total` and `headers_length` may be made to lie."""
    if isinstance(payload, str):
        payload = payload.encode()
    hl = len(headers) if headers_length is None else headers_length
    tl = 16 + len(headers) + len(payload) if total is None else total
    prelude = struct.pack(">II", tl, hl)
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + headers + payload
    return body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def flip(b, at, bit=0):
    b = bytearray(b)
    b[at] ^= 1 << bit
    return bytes(b)


def chunk_payload(event):
    data = base64.b64encode(json.dumps(event, separators=(",", ":")).encode()).decode()
    return json.dumps({"bytes": data, "p": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"},
                      separators=(",", ":"))


def event_headers(event_type="chunk"):
    return (header(":event-type", 7, event_type)
            + header(":content-type", 7, "application/json")
            + header(":message-type", 7, "event"))


def exception_headers(exception_type):
    return (header(":exception-type", 7, exception_type)
            + header(":content-type", 7, "application/json")
            + header(":message-type", 7, "exception"))


UUID = bytes(range(0x10, 0x20))

VALID = [
    ("translation_md_vector", frame(b"", '{"foo": "bar"}'), None),
    ("empty", frame(b"", b""), None),
    ("bedrock_message_start", frame(event_headers(), chunk_payload({
        "type": "message_start",
        "message": {"id": "msg_bdrk_01", "type": "message", "role": "assistant",
                    "model": "claude-sonnet-4-20250514", "content": [], "stop_reason": None,
                    "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": 1}},
    })), [(":event-type", 7), (":content-type", 7), (":message-type", 7)]),
    ("bedrock_text_delta", frame(event_headers(), chunk_payload({
        "type": "content_block_delta", "index": 0,
        "delta": {"type": "text_delta", "text": "Héllo, wörld ✓"},
    })), [(":event-type", 7), (":content-type", 7), (":message-type", 7)]),
] + [
    (f"bedrock_{name}", frame(exception_headers(name), json.dumps({"message": message})),
     [(":exception-type", 7), (":content-type", 7), (":message-type", 7)])
    for name, message in [
        ("throttlingException", "Too many requests, please wait before trying again."),
        ("serviceUnavailableException", "Bedrock is unable to process your request."),
        ("modelTimeoutException", "Model has timed out in processing the request."),
        ("validationException", "messages: text content blocks must be non-empty"),
        ("internalServerException", "An internal server error occurred."),
        ("modelStreamErrorException", "The model stream ended with an error."),
    ]
] + [
    ("every_header_type", frame(
        header("true", 0) + header("false", 1) + header("byte", 2, -7)
        + header("short", 3, -12345) + header("int", 4, 2_000_000_000)
        + header("long", 5, -9_000_000_000_000_000_000) + header("bytes", 6, b"\x00\xffbin")
        + header("string", 7, "caf\u00e9 \u2603") + header("timestamp", 8, 1_700_000_000_123)
        + header("uuid", 9, UUID),
        b"\x00\x01\x02binary payload\xff"),
     [("true", 0), ("false", 1), ("byte", 2), ("short", 3), ("int", 4), ("long", 5),
      ("bytes", 6), ("string", 7), ("timestamp", 8), ("uuid", 9)]),
    ("integer_extremes", frame(
        header("b-", 2, -128) + header("b+", 2, 127) + header("s-", 3, -32768)
        + header("s+", 3, 32767) + header("i-", 4, -2**31) + header("i+", 4, 2**31 - 1)
        + header("l-", 5, -2**63) + header("l+", 5, 2**63 - 1) + header("t0", 8, 0)
        + header("t-", 8, -1),
        b""),
     [("b-", 2), ("b+", 2), ("s-", 3), ("s+", 3), ("i-", 4), ("i+", 4), ("l-", 5), ("l+", 5),
      ("t0", 8), ("t-", 8)]),
    ("empty_name_and_values", frame(
        header("", 0) + header("e", 6, b"") + header("s", 7, ""), b"x"),
     [("", 0), ("e", 6), ("s", 7)]),
    ("long_name_and_value", frame(
        header("n" * 255, 7, "v" * 1000) + header("b", 6, bytes(range(256)) * 2), b"{}"),
     [("n" * 255, 7), ("b", 6)]),
    ("twenty_headers", frame(
        b"".join(header(f"h{i:02}", 4, i * 1000) for i in range(20)), b"many"),
     [(f"h{i:02}", 4) for i in range(20)]),
]

# A prelude that says the frame is near 4 GiB: its CRC is right, so only the length is wrong.
HUGE = frame(b"", b"", total=0xFFFFFF00)[:12]

REJECTED = [
    # (name, frame, botocore exception name, ringgate fault)
    ("prelude_crc", flip(frame(event_headers(), "{}"), 9), "ChecksumMismatch", "prelude_crc"),
    ("total_length_bit", flip(frame(event_headers(), "{}"), 3, 1), "ChecksumMismatch",
     "prelude_crc"),
    ("message_crc", flip(frame(event_headers(), "{}"), -1), "ChecksumMismatch", "message_crc"),
    ("payload_bit", flip(frame(event_headers(), '{"a":1}'), -6), "ChecksumMismatch",
     "message_crc"),
    ("header_bit", flip(frame(event_headers(), "{}"), 14), "ChecksumMismatch", "message_crc"),
    ("huge_total_length", HUGE, "InvalidPayloadLength", "too_long"),
    ("huge_headers_length", frame(b"", b"abcd", headers_length=0x20001),
     "InvalidHeadersLength", "headers_length"),
    ("headers_length_past_total", frame(b"", b"abcdefgh", headers_length=9), "error",
     "headers_length"),
    ("unknown_header_type", frame(header("x", 0) + b"\x01y\x0a", b"{}"), "KeyError",
     "unknown_type"),
    ("int_past_end", frame(header("n", 4, 1)[:-2], b""), "error", "past_end"),
    ("type_past_end", frame(b"\x01n", b""), "error", "past_end"),
    ("name_not_utf8", frame(header(b"\xff\xfe", 0), b""), "UnicodeDecodeError", "not_utf8"),
    ("string_not_utf8", frame(header("s", 7, b"\xc3\x28"), b""), "UnicodeDecodeError",
     "not_utf8"),
    ("duplicate_header", frame(
        header(":message-type", 7, "event") + header(":message-type", 7, "exception"), b"{}"),
     "DuplicateHeader", "duplicate"),
]

STRICTER = [
    # (name, frame, ringgate fault): botocore takes these.
    ("total_length_12", frame(b"", b"", total=12)[:12], "too_short"),
    ("string_past_end", frame(b"\x01s\x07\x00\x10ab", b"0123456789abcdef"), "past_end"),
    ("uuid_past_end", frame(b"\x01u\x09abc", b"0123456789abcdef"), "past_end"),
]


# --- decoding with botocore ----------------------------------------------------------------------

def decode(data, pieces=None):
    """The messages botocore reads from `data` fed in `pieces`, and the bytes it has left."""
    buf = EventStreamBuffer()
    out = []
    at = 0
    for n in (pieces or [len(data)]):
        buf.add_data(data[at:at + n])
        at += n
        out.extend(buf)
    assert at == len(data)
    return out, buf._data


def as_json(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    raise TypeError(type(value))


def main():
    valid = []
    for name, data, types in VALID:
        messages, left = decode(data)
        assert len(messages) == 1 and left == b"", name
        m = messages[0]
        headers = list(m.headers.items())
        types = types or []
        assert [n for n, _ in types] == [n for n, _ in headers], name
        valid.append({
            "name": name,
            "frame": data.hex(),
            "headers": [{"name": n, "type": t, "value": as_json(v)}
                        for (n, t), (_, v) in zip(types, headers)],
            "payload": m.payload.hex(),
        })

    # The known vector of TRANSLATION.md §3.
    vector = bytes.fromhex(valid[0]["frame"])
    assert vector.startswith(bytes.fromhex("0000001e00000000baf2f68a")), vector.hex()
    assert vector.endswith(bytes.fromhex("ae7258e4")), vector.hex()

    # All the valid frames in one stream, in random pieces: the same messages.
    stream = b"".join(bytes.fromhex(v["frame"]) for v in valid)
    rng = random.Random(7)
    for _ in range(50):
        pieces = []
        while sum(pieces) < len(stream):
            pieces.append(min(rng.choice([1, 2, 3, 5, 13, 64, 700]), len(stream) - sum(pieces)))
        messages, left = decode(stream, pieces)
        assert left == b""
        assert [m.payload.hex() for m in messages] == [v["payload"] for v in valid]

    rejected = []
    for name, data, expected, fault in REJECTED:
        try:
            decode(data)
        except Exception as e:  # botocore raises its own errors, struct's and KeyError
            assert type(e).__name__ == expected, (name, repr(e))
            rejected.append({"name": name, "frame": data.hex(),
                             "botocore": f"{type(e).__name__}: {e}", "fault": fault})
        else:
            sys.exit(f"botocore accepted {name}")

    stricter = []
    for name, data, fault in STRICTER:
        messages, left = decode(data)
        assert len(messages) == 1 and left == b"", name
        m = messages[0]
        stricter.append({
            "name": name,
            "frame": data.hex(),
            "botocore": {"headers": {k: as_json(v) for k, v in m.headers.items()},
                         "payload": m.payload.hex()},
            "fault": fault,
        })

    doc = {
        "about": "Written by tests/oracles/eventstream_frames.py (see its header); do not edit.",
        "botocore": botocore.__version__,
        "valid": valid,
        "rejected": rejected,
        "stricter": stricter,
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT)}: {len(valid)} valid, {len(rejected)} rejected, "
          f"{len(stricter)} stricter (botocore {botocore.__version__})")


if __name__ == "__main__":
    main()
