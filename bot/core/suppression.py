"""The salted suppression list: what is left of a number after its owner was erased.

Core level (models and signing only), so that the one customer-creating function
(bot/core/rows.py) can refuse an erased number itself; bot/policy/privacy.py writes it.
"""

from __future__ import annotations

import re

from bot.core.models import Suppression
from bot.core.signing import sign_hmac


def suppression_hash(phone: str, salt: str) -> str:
    """HMAC-SHA256 of the number's digits keyed with SUPPRESSION_SALT, as hex.

    Only digits count, so "+91 98123 45678" and "+919812345678" hash alike. Without the
    salt (allowed in sandbox only) the hash of a phone number is trivially reversible.
    """
    return sign_hmac(salt, ("+" + re.sub(r"\D", "", phone)).encode())


def is_suppressed(phone: str, salt: str) -> bool:
    """True when this number's owner asked to be erased: never message it again."""
    return phone in suppressed_among([phone], salt)


def suppressed_among(phones: list[str], salt: str) -> set[str]:
    """The numbers in `phones` whose owners asked to be erased (one query for a batch)."""
    hashes = {suppression_hash(phone, salt): phone for phone in phones}
    if not hashes:
        return set()
    found = Suppression.select(Suppression.phone_hash).where(
        Suppression.phone_hash.in_(list(hashes))
    )
    return {hashes[row.phone_hash] for row in found}
