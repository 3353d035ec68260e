"""The date a customer promises to pay by, read from a reply in English or Dutch.

Relative words count from the customer's local calendar day when the reply arrived: a reply at
00:30 on Sunday in Amsterdam saying "tomorrow" means Monday, even though it is still Saturday in
UTC. Conventions (the first match in this order wins):

- "2025-12-15" (ISO 8601, year first) and "2025/12/15";
- "15/12", "15-12", "15.12" (day first, optional year), "15 december", "15 dec", "december 15th",
  "15th of december": the next such date on or after today unless a year is given;
- "on the 15th", "de 15e": the next 15th on or after today (the last day of a shorter month);
- "end of the month", "eind van de maand": the last day of this month;
- "in 3 days", "over twee weken": today plus that many days ("in 2-3 days": the later one);
- "next week friday", "volgende week vrijdag": that weekday in the next (Monday-first) week;
- "today"/"vandaag", "tomorrow"/"morgen", "day after tomorrow"/"overmorgen";
- a weekday ("friday", "vrijdag"): its next occurrence after today (1 to 7 days ahead);
- "next week"/"volgende week": Friday of next week; "next month"/"volgende maand": its first day;
- "this weekend"/"dit weekend": the coming Sunday.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dispatcher.replies.text import normalise
from paynudge.errors import PayNudgeError

_WEEKDAYS: tuple[str, ...] = (
    r"mon(day)?|maandag|ma",
    r"tue(s|sday)?|tuesday|dinsdag|di",
    r"wed(nesday|nsday)?|wensday|woensdag|wo",
    r"thu(r|rs|rsday|rday)?|thursday|donderdag|do",
    r"fri(day)?|fryday|vr[iy]j?dag|vrijdg|vr",
    r"sat(urday)?|zaterdag|za",
    r"sun(day)?|zondag|zo",
)
# two-letter Dutch abbreviations are common words elsewhere ("do", "ma", "zo"): only with a dot
_WEEKDAY_PATTERNS = [
    re.compile(
        rf"\b({'|'.join(p for p in pattern.split('|') if len(p) > 2)})\b"
        rf"|\b({'|'.join(p for p in pattern.split('|') if len(p) == 2)})\.(?!\d)"
    )
    for pattern in _WEEKDAYS
]
_MONTHS: dict[str, int] = {
    **{name: i for i, name in enumerate(calendar.month_name) if name},
    "januari": 1, "februari": 2, "maart": 3, "mei": 5, "juni": 6, "juli": 7, "augustus": 8,
    "oktober": 10,
    "jan": 1, "feb": 2, "mar": 3, "mrt": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
    "sept": 9, "oct": 10, "okt": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH_NAMES = "|".join(sorted((name.lower() for name in _MONTHS), key=len, reverse=True))
_MONTH_NUMBER = {name.lower(): number for name, number in _MONTHS.items()}
_NUMBERS: dict[str, int] = {
    "a": 1, "an": 1, "one": 1, "een": 1, "two": 2, "twee": 2, "three": 3, "drie": 3, "four": 4,
    "vier": 4, "five": 5, "vijf": 5, "six": 6, "zes": 6, "seven": 7, "zeven": 7, "ten": 10,
    "tien": 10, "couple of": 2, "paar": 3, "few": 3,
}  # fmt: skip
_ORDINAL = r"(\d{1,2})(st|nd|rd|th|e|de|ste)?"

ISO_DATE = re.compile(r"(?<![\d,.€$£/-])(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?![\d,/-])")
NUMERIC = re.compile(
    r"(?<![\d,.€$£/-])(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{2}|\d{4}))?(?![\d,/-])"
    r"(?! ?(days?|dagen|dag|weeks?|weken|uur|hours?|euro|eur)\b)"
)
DAY_MONTH = re.compile(rf"\b{_ORDINAL}\.?( of)? ({_MONTH_NAMES})\b\.?(?: (\d{{4}}))?")
MONTH_DAY = re.compile(rf"\b({_MONTH_NAMES})\.? {_ORDINAL}\b(?:,? (\d{{4}}))?")
DAY_OF_MONTH = re.compile(
    r"\b(on the|the|op de|de|per de|voor de|before the) (\d{1,2})(st|nd|rd|th|e|de|ste)\b"
)
END_OF_MONTH = re.compile(
    r"\b(end of (the |this )?month|eind(e)? (van )?(de|deze|d) ?maand|einde maand|eind vd maand)\b"
)
IN_DAYS = re.compile(
    rf"\b(in|over|within|binnen)( a| the)? (?:\d+ ?(?:-|to|tot) ?)?(\d+|{'|'.join(_NUMBERS)})"
    r" (days?|dagen|dag|weeks?|weken)\b"
)
NEXT_WEEK_DAY = re.compile(r"\b(next week|volgende week|komende week)( on)? (\w+)")
NEXT_WEEK = re.compile(r"\b(next week|volgende week|komende week)\b")
NEXT_MONTH = re.compile(r"\b(next month|volgende maand|komende maand)\b")
WEEKEND = re.compile(r"\b(this weekend|dit weekend|weekend)\b")
RELATIVE_DAYS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"\b(day after tomorrow|overmorgen)\b"), 2),
    (re.compile(r"\b(tomorrow|tmrw|tmr|tomorow|2morrow|morgen|morgenochtend|morgenavond)\b"), 1),
    (re.compile(r"\b(today|tonight|this evening|vandaag|vanavond|vanmiddag)\b"), 0),
)


def local_today(received_at: datetime, timezone: str) -> date:
    """The customer's calendar day at ``received_at`` (an aware instant) in ``timezone``."""
    if received_at.tzinfo is None:
        raise PayNudgeError(f"received_at: expected a time-zone aware instant, found {received_at}")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise PayNudgeError(
            f"timezone: expected an IANA time zone such as Europe/Amsterdam, found {timezone!r}"
        ) from None
    return received_at.astimezone(zone).date()


def promised_date(text: str, received_at: datetime, timezone: str) -> date | None:
    """The promised payment date in ``text``, or None when it names no date."""
    today = local_today(received_at, timezone)
    normalised = normalise(text)
    for finder in _FINDERS:
        found = finder(normalised, today)
        if found is not None:
            return found
    return None


def _clamped(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _next_on_or_after(today: date, month: int, day: int, year: int | None) -> date | None:
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    if year is not None:
        year = year + 2000 if year < 100 else year
        return _clamped(year, month, day)
    candidate = _clamped(today.year, month, day)
    return candidate if candidate >= today else _clamped(today.year + 1, month, day)


def _iso(text: str, today: date) -> date | None:
    match = ISO_DATE.search(text)
    if match is None:
        return None
    return _next_on_or_after(today, int(match[2]), int(match[3]), int(match[1]))


def _numeric(text: str, today: date) -> date | None:
    match = NUMERIC.search(text)
    if match is None:
        return None
    year = int(match[3]) if match[3] else None
    return _next_on_or_after(today, int(match[2]), int(match[1]), year)


def _month_name(text: str, today: date) -> date | None:
    if (match := DAY_MONTH.search(text)) is not None:
        day, month, year = int(match[1]), _MONTH_NUMBER[match[4]], match[5]
    elif (match := MONTH_DAY.search(text)) is not None:
        day, month, year = int(match[2]), _MONTH_NUMBER[match[1]], match[4]
    else:
        return None
    return _next_on_or_after(today, month, day, int(year) if year else None)


def _day_of_month(text: str, today: date) -> date | None:
    match = DAY_OF_MONTH.search(text)
    if match is None or not 1 <= int(match[2]) <= 31:
        return None
    day = int(match[2])
    this_month = _clamped(today.year, today.month, day)
    if this_month >= today:
        return this_month
    following = today.replace(day=1) + timedelta(days=32)
    return _clamped(following.year, following.month, day)


def _end_of_month(text: str, today: date) -> date | None:
    if END_OF_MONTH.search(text) is None:
        return None
    return _clamped(today.year, today.month, 31)


def _in_days(text: str, today: date) -> date | None:
    match = IN_DAYS.search(text)
    if match is None:
        return None
    count = int(match[3]) if match[3].isdigit() else _NUMBERS[match[3]]
    weeks = match[4].startswith(("week", "wek"))
    return today + timedelta(days=count * (7 if weeks else 1))


def weekday_in(text: str) -> int | None:
    """Monday=0 ... Sunday=6 of the first weekday named in ``text``, or None."""
    found = [
        (match.start(), day)
        for day, pattern in enumerate(_WEEKDAY_PATTERNS)
        if (match := pattern.search(text)) is not None
    ]
    return min(found)[1] if found else None


def _next_week_day(text: str, today: date) -> date | None:
    match = NEXT_WEEK_DAY.search(text)
    if match is None:
        return None
    day = weekday_in(text[match.start(3) :])
    if day is None:
        return None
    return today - timedelta(days=today.weekday()) + timedelta(days=7 + day)


def _relative_day(text: str, today: date) -> date | None:
    for pattern, days in RELATIVE_DAYS:
        if pattern.search(text):
            return today + timedelta(days=days)
    return None


def _weekday(text: str, today: date) -> date | None:
    day = weekday_in(text)
    if day is None:
        return None
    return today + timedelta(days=(day - today.weekday() - 1) % 7 + 1)


def _next_week(text: str, today: date) -> date | None:
    if NEXT_WEEK.search(text) is None:
        return None
    return today - timedelta(days=today.weekday()) + timedelta(days=7 + 4)


def _next_month(text: str, today: date) -> date | None:
    if NEXT_MONTH.search(text) is None:
        return None
    return (today.replace(day=1) + timedelta(days=32)).replace(day=1)


def _weekend(text: str, today: date) -> date | None:
    if WEEKEND.search(text) is None:
        return None
    return today + timedelta(days=6 - today.weekday())


_FINDERS: tuple[Callable[[str, date], date | None], ...] = (
    _iso,
    _numeric,
    _month_name,
    _day_of_month,
    _end_of_month,
    _in_days,
    _next_week_day,
    _relative_day,
    _weekday,
    _next_week,
    _next_month,
    _weekend,
)
