"""Phone numbers: shops send free text ("098123 45678", "+91 98123-45678"); we keep E.164.
And the other key WhatsApp gives a customer: the business-scoped user id (BSUID)."""

from __future__ import annotations

import re

import phonenumbers

from bot.core import zones

#: ISO 3166 alpha-2 regions a number can be read in (those with a calling code).
REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)


def to_e164(raw: str | None, default_region: str | None) -> str | None:
    """The E.164 form of `raw`, or None when it is not a valid number.

    `default_region` (ISO 3166 alpha-2, from the order's country or the settings) is used
    for numbers written without a country code.
    """
    if not raw or not raw.strip():
        return None
    region = (default_region or "").upper() or None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask(phone: str | None) -> str:
    """A phone number safe for logs: country code and last two digits only."""
    if not phone:
        return "<none>"
    digits = phone.lstrip("+")
    if len(digits) <= 4:
        return "***"
    return f"+{digits[:2]}{'*' * (len(digits) - 4)}{digits[-2:]}"


def time_zone(e164: str) -> str | None:
    """The customer's time zone from their number, when the number pins down exactly one,
    under its canonical name (phonenumbers gives "Asia/Calcutta"; we store "Asia/Kolkata")."""
    from phonenumbers import timezone

    found = timezone.time_zones_for_number(phonenumbers.parse(e164))
    return zones.canonical(found[0]) if len(found) == 1 and found[0] != "Etc/Unknown" else None


#: A WhatsApp business-scoped user id ("IN.1234…", a parent one "IN.ENT.…"; PROVIDERS.md
#: §9.1): what a customer who writes by username is known by instead of a number.
BSUID_SHAPE = re.compile(r"[A-Z]{2}\.[A-Za-z0-9.]{1,157}")


def is_bsuid(key: str | None) -> bool:
    """True for a BSUID rather than a phone number."""
    return bool(key) and BSUID_SHAPE.fullmatch(key) is not None


def country(key: str | None) -> str | None:
    """The ISO 3166 country of a number ("+9198…" -> "IN") or of a BSUID (its "IN."
    prefix, PROVIDERS.md §9.1); None when neither says."""
    if is_bsuid(key):
        return key[:2]
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(key or ""))
    except phonenumbers.NumberParseException:
        return None
    return region if region and region != "ZZ" else None
