"""Keyword rules for the unambiguous replies, English and Dutch.

Each rule is a named regular expression on the normalised text (:func:`text.normalise`). A reply
is decided by the rules only when they are unambiguous: the bare SMS stop words always win (a
carrier requirement), otherwise the rules must point at exactly one intent. Anything else, a
reply matching two intents ("I already paid, stop texting me") or none, goes to the trained
classifier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STOP_WORDS = re.compile(
    r"^\W*(stop|stoppen|stop ?all|unsubscribe|afmelden|uitschrijven|end|quit|cancel|opt ?out)"
    r"\W*$"
)
"""A whole reply that is one of the standard SMS opt-out keywords."""

_NEGATION = r"(not|never|n't|nt|niet|nooit|geen)"
_PAY = r"(pay|paid|payed|betaal|betaald|betalen|overmaken|overgemaakt|voldaan|voldoen)"
NEGATED_PAYMENT = re.compile(rf"\b{_NEGATION}\b\W*(\w+\W+){{0,3}}{_PAY}\b|n't\s+(\w+\s+)?{_PAY}")
"""'I have not paid', 'ik heb nog niet betaald', 'I won't pay': no 'paid' or 'promise' rule."""


@dataclass(frozen=True)
class Rule:
    """A named pattern that, when it matches, points at one intent."""

    name: str
    intent: str
    pattern: re.Pattern[str]
    skip_when_negated: bool = False


def _rule(name: str, intent: str, pattern: str, skip_when_negated: bool = False) -> Rule:
    return Rule(name, intent, re.compile(pattern), skip_when_negated)


RULES: tuple[Rule, ...] = (
    # opt-out
    _rule("unsubscribe", "opt_out", r"\b(unsubscribe|afmelden|uitschrijven|opt(-| )?out)\b"),
    _rule(
        "stop_contact_en",
        "opt_out",
        r"\bstop (sending|texting|messaging|emailing|e-mailing|calling|contacting|spamming)\b"
        r"|\b(don'?t|do not|never) (text|message|e-?mail|call|contact) me\b"
        r"|\bremove (me|my (number|e-?mail|details))\b"
        r"|\bno more (texts|messages|e-?mails|reminders|calls)\b",
    ),
    _rule(
        "stop_contact_nl",
        "opt_out",
        r"\bstop (met )?(sturen|sms|smsen|berichten|mailen|appen|bellen)\b"
        r"|\b(geen|niet meer) (sms(je)?|berichten|mails?|e-?mails?|herinneringen)( meer)?"
        r"( sturen| ontvangen)?\W*$"
        r"|\bniet meer (sturen|sms'?en|mailen|bellen|benaderen|contacteren)\b"
        r"|\bhaal (me|mij|mijn nummer) (uit|van)\b",
    ),
    # paid already
    _rule(
        "paid_en",
        "paid_already",
        r"\b(already|just|i'?ve|have|has been|was|i|we) (already )?(paid|payed|settled)\b"
        r"|\bpaid (it|this|that|the bill|in full|yesterday|last week|this morning|already)\b"
        r"|\bpayment (has been|was|is) (made|sent|done|completed)\b",
        skip_when_negated=True,
    ),
    _rule(
        "paid_nl",
        "paid_already",
        r"\b(al|reeds|net|gisteren|heb|hebben|is|zojuist) (al )?(betaald|overgemaakt|voldaan)\b"
        r"|\b(betaling|bedrag) is (al )?(gedaan|overgemaakt|voldaan|verstuurd)\b",
        skip_when_negated=True,
    ),
    # dispute
    _rule(
        "dispute_en",
        "dispute",
        r"\b(bill|invoice|amount|charge)s? (is|are|seems|looks) (wrong|incorrect|not right)\b"
        r"|\b(wrong|incorrect) (amount|bill|invoice|charge)\b"
        r"|\b(overcharged|double charged|charged twice|billed twice)\b"
        r"|\bnot my (bill|invoice|account)\b|\bnever (ordered|used|signed up)\b"
        r"|\bdisput(e|ing)\b",
    ),
    _rule(
        "dispute_nl",
        "dispute",
        r"\bklopt (niet|geen)\b|\b(onjuist|onterecht)\b|\bte hoog\b"
        r"|\b(nooit|niet) (besteld|gebruikt|afgesloten)\b|\bbetwist\b|\bbezwaar\b"
        r"|\b(dubbel|twee keer) (afgeschreven|gefactureerd|in rekening)\b",
    ),
    # hardship
    _rule(
        "hardship_en",
        "hardship",
        r"\b(lost|lose|losing) my (job|work|income)\b|\b(unemployed|laid off|made redundant)\b"
        r"|\b(can'?t|cannot|can not|unable to|not able to) (afford|pay)( (it|this|that))?\W*$"
        r"|\b(payment|instal?ment) plan\b|\b(financial|money) (problems|trouble|difficulties)\b"
        r"|\bno money\b",
    ),
    _rule(
        "hardship_nl",
        "hardship",
        r"\b(werkloos|ontslagen|baan kwijt|werk kwijt)\b|\bbetalingsregeling\b"
        r"|\b(kan|kun|kunnen) (het|dit|dat|de rekening)? ?(echt )?niet (betalen|opbrengen)\W*$"
        r"|\bgeen geld\b|\b(geldproblemen|schuldhulp|schuldsanering)\b|\bin termijnen\b",
    ),
    # promise to pay (a date, when there is one, comes from dates.promised_date)
    _rule(
        "promise_en",
        "promise_to_pay",
        r"\b(i'?ll|i will|will|gonna|going to|i can|i shall|promise to|plan to)"
        r" (\w+ )?(pay|settle|transfer|clear)\b",
        skip_when_negated=True,
    ),
    _rule(
        "promise_nl",
        "promise_to_pay",
        r"\bik betaal\b|\bbetaal (ik|het|dit|dat)\b"
        r"|\b(zal|ga|gaan|zullen|wordt)\b[^.!?]{0,30}\b(betalen|overmaken|voldoen|betaald)\b"
        r"|\bmaak\b[^.!?]{0,20}\bover\b",
        skip_when_negated=True,
    ),
)


@dataclass(frozen=True)
class RuleMatch:
    """The intent the rules agree on and the first rule that matched."""

    intent: str
    rule: str


def match_rules(normalised: str) -> RuleMatch | None:
    """The unambiguous rule decision on ``normalised`` text, or None (left to the model)."""
    if STOP_WORDS.match(normalised):
        return RuleMatch("opt_out", "stop_keyword")
    negated = NEGATED_PAYMENT.search(normalised) is not None
    fired: dict[str, str] = {}
    for rule in RULES:
        if rule.skip_when_negated and negated:
            continue
        if rule.intent not in fired and rule.pattern.search(normalised):
            fired[rule.intent] = rule.name
    if len(fired) != 1:
        return None
    ((intent, name),) = fired.items()
    return RuleMatch(intent, name)
