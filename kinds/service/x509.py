"""The one thing the service check reads from a certificate: its notAfter, straight from DER.

``SSLSocket.getpeercert()`` returns the parsed fields only after a *verified* handshake; with
verification off (``verify = false``, or the second handshake that reads the certificate of
a service that failed verification) it returns ``{}``. The DER form is always there, and
notAfter sits at a fixed place in it, so a 40-line walk beats a dependency (``cryptography``)
on every probe.

    Certificate    ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer,
                                  validity, ... }
    Validity       ::= SEQUENCE { notBefore Time, notAfter Time }
    Time           ::= UTCTime (YYMMDDHHMMSSZ) | GeneralizedTime (YYYYMMDDHHMMSSZ)
"""

from __future__ import annotations

import datetime as dt

_SEQUENCE = 0x30
_VERSION = 0xA0  # [0] EXPLICIT, constructed
_UTC_TIME = 0x17
_GENERALIZED_TIME = 0x18


def _tlv(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the element at ``pos``."""
    if pos + 2 > len(der):
        raise ValueError("truncated DER")
    tag, first = der[pos], der[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if not 1 <= count <= 4 or pos + count > len(der):
            raise ValueError("bad DER length")
        length = int.from_bytes(der[pos : pos + count], "big")
        pos += count
    if pos + length > len(der):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _time(tag: int, text: bytes) -> dt.datetime:
    value = text.decode("ascii")
    if tag == _UTC_TIME:
        # RFC 5280 4.1.2.5.1: YY >= 50 is 19YY, otherwise 20YY.
        year = int(value[:2])
        value = f"{1900 + year if year >= 50 else 2000 + year}{value[2:]}"
    elif tag != _GENERALIZED_TIME:
        raise ValueError(f"validity time has tag 0x{tag:02x}")
    if not value.endswith("Z") or len(value) != 15:
        raise ValueError(f"validity time {value!r} is not YYYYMMDDHHMMSSZ")
    return dt.datetime.strptime(value, "%Y%m%d%H%M%SZ").replace(tzinfo=dt.UTC)


def not_after(der: bytes) -> dt.datetime:
    """The certificate's notAfter (UTC); ValueError if ``der`` is not an X.509 certificate."""
    tag, start, _ = _tlv(der, 0)
    if tag != _SEQUENCE:
        raise ValueError("not a certificate")
    tag, pos, tbs_end = _tlv(der, start)
    if tag != _SEQUENCE:
        raise ValueError("no tbsCertificate")
    fields: list[tuple[int, int, int]] = []
    while pos < tbs_end and len(fields) < 5:
        tag, value_start, value_end = _tlv(der, pos)
        if not (tag == _VERSION and not fields):  # the optional version is not counted
            fields.append((tag, value_start, value_end))
        pos = value_end
    if len(fields) < 4:
        raise ValueError("tbsCertificate too short")
    tag, pos, validity_end = fields[3]  # serialNumber, signature, issuer, validity
    if tag != _SEQUENCE:
        raise ValueError("no validity")
    _, _, pos = _tlv(der, pos)  # notBefore
    tag, value_start, value_end = _tlv(der, pos)
    if value_end > validity_end:
        raise ValueError("validity overruns")
    return _time(tag, der[value_start:value_end])
