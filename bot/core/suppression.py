"""The salted suppression list: what is left of a number (or a WhatsApp BSUID) after its
owner was erased.

Core level (models and signing only), so that the one customer-creating function
(bot/core/rows.py) can refuse an erased number itself; bot/policy/privacy.py writes it.
"""

from __future__ import annotations

import re

from bot.core.models import Suppression
from bot.core.phones import is_bsuid
from bot.core.signing import sign_hmac


def suppression_hash(key: str, salt: str) -> str:
    """HMAC-SHA256 keyed with SUPPRESSION_SALT, as hex, of a number's digits or of a
    BSUID (`key` is either).

    Only a number's digits count, so "+91 98123 45678" and "+919812345678" hash alike; a
    BSUID is hashed whole, under its own prefix, so it can never equal a number's hash.
    Without the salt (allowed in sandbox only) the hash of a phone number is trivially
    reversible.
    """
    if is_bsuid(key):
        return sign_hmac(salt, f"bsuid:{key}".encode())
    return sign_hmac(salt, ("+" + re.sub(r"\D", "", key)).encode())


def is_suppressed(key: str, salt: str) -> bool:
    """True when the owner of this number or BSUID asked to be erased: never message
    them again."""
    return key in suppressed_among([key], salt)


def suppressed_among(keys: list[str], salt: str) -> set[str]:
    """The numbers and BSUIDs in `keys` whose owners asked to be erased (one query for a
    batch; None entries are ignored)."""
    hashes = {suppression_hash(key, salt): key for key in keys if key}
    if not hashes:
        return set()
    found = Suppression.select(Suppression.phone_hash).where(
        Suppression.phone_hash.in_(list(hashes))
    )
    return {hashes[row.phone_hash] for row in found}
