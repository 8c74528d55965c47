"""Time zones under their canonical IANA names: "Asia/Kolkata", never "Asia/Calcutta".

phonenumbers' time zone lookup (and some shops' data) still gives the old names, which
zoneinfo accepts as links. We store one spelling so that filters, reports and the CRM see
one zone per place. The table of old names is CLDR's, as Babel ships it
(`babel.core.get_global("zone_aliases")`: each alias to its current IANA name; zoneinfo
itself has no alias API). A zone that tzdata merged into another country's but that is
still that country's own name (Europe/Bratislava, a link to Europe/Prague) is kept as it is.
"""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

from babel.core import get_global

#: The one spelling of UTC: Dakiya's default (DEFAULT_TIMEZONE) and the documentation's,
#: though IANA's canonical name is Etc/UTC; its other spellings (Zulu, UCT) become it.
UTC = "UTC"


@cache
def aliases() -> dict[str, str]:
    """Old name -> canonical name, for every alias CLDR knows whose name the server's
    zone database has (CLDR's "Factory" -> "Etc/Unknown" is no zone)."""
    known = available_timezones()
    table = {}
    for old, new in get_global("zone_aliases").items():
        new = UTC if new == "Etc/UTC" else new
        if old != new and new in known:
            table[old] = new
    return table


def canonical(name: str | None) -> str | None:
    """`name` under its canonical IANA name (None stays None; unknown names unchanged)."""
    if not name:
        return name
    return aliases().get(name, name)
