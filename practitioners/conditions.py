"""Conditions people search by: suggestions that forgive typos and word order, resolving what
someone typed to one condition (or the few it could mean), and the techniques a condition
search looks for.

Fuzzy matching is rapidfuzz's edit-distance ratios over each condition's name and synonyms
(``_score``): it scores a misspelling ("pirformis"), swapped words ("elbow tennis") and the
start of a word as it is typed ("plant") without an index. Two dozen conditions, a hundred
phrases: a request reads them in one query and scores them in well under a millisecond.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process, utils

from .models import Certification, Condition, ConditionTechnique

# A phrase scoring below this is not suggested at all.
SUGGEST_SCORE = 70
# Free text resolves on its own when it matches one condition this well ("pirformis": 80) ...
RESOLVE_ALONE_SCORE = 75
# ... or when its best match scores this well ...
RESOLVE_SCORE = 88
# ... and leads the next condition's best by this much; otherwise the page asks which.
RESOLVE_LEAD = 6
SUGGESTION_LIMIT = 8

_APOSTROPHES = re.compile("['\u2019`]s?\\b")  # straight, curly and backtick apostrophes


def normalise(text: str) -> str:
    """ "Golfer's  Elbow!" -> "golfer elbow": what matching compares."""
    return utils.default_process(_APOSTROPHES.sub("", text))


@dataclass(frozen=True)
class Suggestion:
    slug: str
    name: str
    matched: str  # the name or synonym that matched, as staff wrote it
    score: float


@dataclass(frozen=True)
class _Phrase:
    condition_id: int
    text: str


@dataclass
class Resolution:
    """What free text means: one condition, or the candidates to choose from, or nothing."""

    condition: Condition | None = None
    candidates: list[Condition] = field(default_factory=list)

    @property
    def is_ambiguous(self) -> bool:
        return self.condition is None and bool(self.candidates)


def _score(query: str, phrase: str, **_: object) -> float:
    """How well ``query`` matches ``phrase``, 0-100: the whole of it (misspelt: "pirformis"),
    its words in any order ("elbow tennis"), or, for a shorter query, a part of it ("plant").

    Like rapidfuzz's WRatio without its token-set scores, which give any phrase sharing one
    word ("pain") 86 points."""
    score = max(fuzz.ratio(query, phrase), 0.95 * fuzz.token_sort_ratio(query, phrase))
    if len(phrase) >= 1.5 * len(query):
        score = max(
            score,
            0.9 * fuzz.partial_ratio(query, phrase),
            0.85 * fuzz.partial_token_sort_ratio(query, phrase),
        )
    return score


def _phrases(conditions: Iterable[Condition]) -> list[_Phrase]:
    phrases = []
    for condition in conditions:
        for text in (condition.name, *condition.synonym_list):
            phrases.append(_Phrase(condition.pk, text))
    return phrases


def _scored(text: str, conditions: Sequence[Condition]) -> list[tuple[Condition, str, float]]:
    """Each condition's best-scoring phrase for ``text``, best first (ties by name)."""
    query = normalise(text)
    if len(query) < 2:
        return []
    phrases = _phrases(conditions)
    matches = process.extract(
        query,
        [normalise(phrase.text) for phrase in phrases],
        scorer=_score,
        processor=None,
        limit=None,
        score_cutoff=SUGGEST_SCORE,
    )
    by_id = {condition.pk: condition for condition in conditions}
    best: dict[int, tuple[str, float]] = {}
    for _, score, position in matches:
        phrase = phrases[position]
        if phrase.condition_id not in best or score > best[phrase.condition_id][1]:
            best[phrase.condition_id] = (phrase.text, score)
    ranked = [(by_id[cid], matched, score) for cid, (matched, score) in best.items()]
    ranked.sort(key=lambda row: (-row[2], row[0].name))
    return ranked


def suggest(text: str, limit: int = SUGGESTION_LIMIT) -> list[Suggestion]:
    conditions = list(Condition.objects.only("id", "slug", "name", "synonyms"))
    return [
        Suggestion(condition.slug, condition.name, matched, round(score, 1))
        for condition, matched, score in _scored(text, conditions)[:limit]
    ]


_SLUG = re.compile(r"[-a-z0-9]+")


def _by_slug(slug: str) -> Condition | None:
    """The condition with this slug, with its techniques' ids (:func:`technique_ids`), in one
    query: a condition search's link (``condition=<slug>``) costs the search one look-up,
    where reading every condition and then its techniques cost three."""
    fields = [f.attname for f in Condition._meta.concrete_fields]
    rows = list(
        Condition.objects.filter(slug=slug)
        .order_by()
        .values_list(*fields, "links__certification_id")
    )
    if not rows:
        return None
    condition = Condition.from_db(Condition.objects.db, fields, rows[0][:-1])
    condition._technique_ids = frozenset(row[-1] for row in rows if row[-1] is not None)
    return condition


def technique_ids(condition: Condition) -> frozenset[int]:
    """The ids of the techniques listed for ``condition`` (read once per condition object)."""
    ids = getattr(condition, "_technique_ids", None)
    if ids is None:
        ids = frozenset(
            ConditionTechnique.objects.filter(condition=condition).values_list(
                "certification_id", flat=True
            )
        )
        condition._technique_ids = ids
    return ids


def resolve(text: str) -> Resolution:
    """A slug, a name or a synonym exactly (any case, punctuation aside) is that condition;
    otherwise the fuzzy match decides when it is clear, and lists the candidates when not."""
    text = text.strip()
    if _SLUG.fullmatch(text.lower()):
        found = _by_slug(text.lower())
        if found is not None:
            return Resolution(condition=found)
    conditions = list(Condition.objects.all())
    for condition in conditions:
        if condition.slug == text.lower():
            return Resolution(condition=condition)
    wanted = normalise(text)
    exact = [
        condition
        for condition in conditions
        if wanted in {normalise(phrase) for phrase in (condition.name, *condition.synonym_list)}
    ]
    if len(exact) == 1:
        return Resolution(condition=exact[0])
    if exact:
        return Resolution(candidates=exact)
    ranked = _scored(text, conditions)
    if not ranked:
        return Resolution()
    best, _, score = ranked[0]
    if len(ranked) == 1 and score >= RESOLVE_ALONE_SCORE:
        return Resolution(condition=best)
    runner_up = ranked[1][2] if len(ranked) > 1 else 0.0
    if score >= RESOLVE_SCORE and score - runner_up >= RESOLVE_LEAD:
        return Resolution(condition=best)
    return Resolution(candidates=[condition for condition, _, _ in ranked[:SUGGESTION_LIMIT]])


def techniques_for(
    condition: Condition, every_certification: Sequence[Certification] | None = None
) -> list[Certification]:
    """The techniques listed for ``condition``, by name. A condition search finds anyone
    holding any of them (or a level of one): ``holding(techniques_for(c), "any")``.

    The one place a condition becomes certifications, so the search can take it anywhere."""
    ids = technique_ids(condition)
    if every_certification is None:
        every_certification = Certification.objects.filter(pk__in=ids)
    return sorted((c for c in every_certification if c.pk in ids), key=lambda c: c.name)


def short_name(technique: Certification) -> str:
    """ "Active Release Techniques (ART)" -> "ART"; "FAKTR (Functional and ...)" -> "FAKTR";
    "Dry needling" -> "dry needling" (a common noun, inside a sentence)."""
    name = technique.name
    abbreviation = re.search(r"\(([A-Z]{2,})\)$", name)
    if abbreviation:
        return abbreviation[1]
    name = name.split(" (")[0]
    words = name.split()
    if len(words) > 1 and words[1].islower():
        return name[0].lower() + name[1:]
    return name


def techniques_phrase(techniques: Sequence[Certification]) -> str:
    """ "ART, Graston Technique or dry needling": what a results header says."""
    names = [short_name(technique) for technique in techniques]
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} or {names[-1]}"


# Words that keep their capital inside a sentence.
_PROPER_WORDS = frozenset({"Achilles"})


def in_sentence(name: str) -> str:
    """ "Piriformis syndrome" -> "piriformis syndrome" (after "used for"); "IT band syndrome"
    and "Achilles tendinopathy" keep their capitals."""
    first = name.split(" ", 1)[0]
    if first in _PROPER_WORDS or first[1:2].isupper():
        return name
    return name[:1].lower() + name[1:]
