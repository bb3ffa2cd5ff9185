#!/usr/bin/env python3
"""Read a ctferry package (format 1 or 2) without ctferry.

    gpg --decrypt FILE.ctf.pgp | zstd -d | python3 docs/read_package.py -

gpg checks the region's signature and decrypts; zstd decompresses; this
script reads the CBOR sequence that docs/FORMAT.md specifies, checks the
counts and the SHA-256 digest in the trailer, and prints the manifest as one
JSON object, then one JSON object per table change (format 2: what
happens to the copy's table before the rows), then one per row:

    {"table": "dbo.Remiss", "op": "change", "change": {"action": "create", "why": "..."}}
    {"table": "dbo.Patient", "op": "upsert", "values": {"Id": 1, ...}}
    {"table": "dbo.Patient", "op": "delete", "key": {"Id": 7}}

Values: exact decimals and 64-bit integers beyond 2^53 as strings, binary as
"0x..." hex, GUIDs, dates and times as text (times to 100 ns, as sent).

Needs Python 3.8+ and the cbor2 package (python3 -m pip install cbor2;
cbor2 5.x and 6.x both work).
Exit code 0 when the package is complete and its digest matches, 1 otherwise.
"""
import datetime
import decimal
import hashlib
import io
import json
import sys
import uuid

import cbor2

FORMATS = (1, 2)
ACTIONS = ("create", "alter", "reset", "drop")
MAGIC = "ctferry package"


class HashingReader(io.RawIOBase):
    """Passes bytes through, hashing them, so the trailer digest can be
    checked. A readable raw stream, as cbor2 6 requires of its input."""

    def __init__(self, raw):
        super().__init__()
        self.raw = raw
        self.sha = hashlib.sha256()

    def readable(self):
        return True

    def readinto(self, b):
        data = self.raw.read(len(b))
        n = len(data)
        b[:n] = data
        self.sha.update(data)
        return n

    def read(self, n=-1):
        data = self.raw.read(n)
        self.sha.update(data)
        return data


def decoder(src):
    """A CBOR decoder that reads no further than the item it decodes (the
    digest must stop where the trailer starts): cbor2 6 reads ahead in
    blocks of read_size unless told otherwise; cbor2 5 reads exactly."""
    try:
        return cbor2.CBORDecoder(src, read_size=1)
    except TypeError:
        return cbor2.CBORDecoder(src)


def to_json(v):
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return v if abs(v) <= 2**53 else str(v)
    if isinstance(v, float):
        return v
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return "0x" + v.hex()
    if isinstance(v, uuid.UUID):
        return str(v).upper()
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    raise ValueError("unexpected value type %r" % type(v).__name__)


def fail(msg):
    print("read_package.py: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 2:
        fail("usage: gpg --decrypt FILE | zstd -d | python3 docs/read_package.py -")
    raw = sys.stdin.buffer if sys.argv[1] == "-" else open(sys.argv[1], "rb")
    src = HashingReader(raw)
    dec = decoder(src)

    def item(what):
        try:
            return dec.decode()
        except (cbor2.CBORDecodeEOF, EOFError):
            fail("the data ends before the %s" % what)
        except cbor2.CBORDecodeError as e:
            fail("invalid CBOR in the %s: %s" % (what, e))

    header = item("header")
    if not isinstance(header, dict) or header.get("magic") != MAGIC:
        fail("not a ctferry package")
    fmt = header.get("format")
    if fmt not in FORMATS:
        fail("format %r; this script reads formats %s" % (fmt, " and ".join(map(str, FORMATS))))
    manifest = item("manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != fmt:
        fail("malformed manifest")
    shown = dict(manifest)
    if shown.get("previous_sha256") is not None:
        shown["previous_sha256"] = shown["previous_sha256"].hex()
    print(json.dumps({"manifest": shown}, ensure_ascii=False))
    for table in manifest["tables"]:
        change = table.get("change") if fmt >= 2 else None
        if change is None:
            continue
        if not isinstance(change, dict) or change.get("action") not in ACTIONS:
            fail("table %s has a malformed change" % table["name"])
        if change["action"] in ("create", "reset", "drop") or change.get("reset"):
            if table["deletes"] != 0:
                fail("table %s is reloaded or dropped but has deletes" % table["name"])
        if change["action"] == "drop" and table["upserts"] != 0:
            fail("table %s is dropped but has rows" % table["name"])
        print(json.dumps({"table": table["name"], "op": "change", "change": change},
                         ensure_ascii=False))

    sections = 0
    totals = {"upserts": 0, "deletes": 0}
    for index, table in enumerate(manifest["tables"]):
        names = [c["name"] for c in table["columns"]]
        for kind in ("deletes", "upserts"):
            rows = table[kind]
            if rows == 0:
                continue
            head = item("section header")
            if head != {"section": kind, "table": index, "rows": rows}:
                fail("section header %r does not match the manifest" % (head,))
            sections += 1
            totals[kind] += rows
            cols = table["key"] if kind == "deletes" else names
            for _ in range(rows):
                row = item("rows of %s" % table["name"])
                if not isinstance(row, list) or len(row) != len(cols):
                    fail("a row of %s has the wrong shape" % table["name"])
                values = {c: to_json(v) for c, v in zip(cols, row)}
                if kind == "upserts":
                    out = {"table": table["name"], "op": "upsert", "values": values}
                else:
                    out = {"table": table["name"], "op": "delete", "key": values}
                print(json.dumps(out, ensure_ascii=False))

    digest = src.sha.digest()
    trailer = item("trailer")
    expected = {"end": True, "sections": sections, "upserts": totals["upserts"],
                "deletes": totals["deletes"], "sha256": digest}
    if trailer != expected:
        fail("the trailer does not match the content (counts or SHA-256 digest)")
    if src.read(1):
        fail("unexpected data after the trailer")


if __name__ == "__main__":
    main()
