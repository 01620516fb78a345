"""Rules that tag named entities in real `fortunes` text: the offline NER data set.

No packaged NER corpus installs offline, so the token-classification task is trained and
tested on real sentences from Debian's `fortunes` whose entities are found by the rules
below (hand-written gazetteers and patterns, reviewed by eye on samples). The text is real;
the tags are rule output, with the rules' blind spots (see `README.md`, "Token classification").

Entity types, in CoNLL-2003 style (BIO/IOB2 tags, titles outside the entity):
- PER: attributions (`-- Mark Twain`, `-- H. L. Mencken`), a known first name followed by
  capitalised words, a known first name alone inside a sentence, or a known single-name person
  (`Socrates`, `Einstein`).
- LOC: countries, continents, US states and large cities from a gazetteer (multi-word first).
- ORG: a short gazetteer of companies, agencies, universities and newspapers.
- DATE: days of the week, months (`March`/`May` only next to a number), `July 4, 1776`-style
  dates, and four-digit years after `in`/`of`/`since` or at the end of an attribution.
"""

from __future__ import annotations

import re

# Words, initials (`J.`), abbreviations (`U.S.`), numbers, and single punctuation marks: the
# CoNLL-style tokens the data set stores.
TOKEN = re.compile(r"--|(?:[A-Z]\.){2,}|[A-Z]\.(?=\s|$)|\d+(?:[.,:]\d+)*|\w+(?:['’-]\w+)*|[^\w\s]")

FIRST_NAMES = frozenset(
    """Aaron Abraham Adam Adolf Adlai Agatha Alan Albert Aldous Alex Alexander Alfred Alice Ambrose Amy Andrew Andy Ann
    Anna Anne Anthony Archibald Arnold Arthur Barbara Barry Ben Benjamin Bernard Bertrand Betty Bill Billy
    Bob Bobby Brian Bruce Calvin Carl Carol Caroline Catherine Cecil Charles Charley Charlie Charlotte Chris
    Christopher Clarence Claude Clifton Clint Cole Daniel Dave David Dean Dennis Dick Don Donald Doris Dorothy
    Doug Douglas Dwight Ed Eddie Edgar Edith Edmund Edna Edward Edwin Eleanor Elizabeth Ella Ellen Elmer Emily
    Emma Eric Ernest Ernie Erwin Eugene Evelyn Felix Florence Frances Francis Frank Franklin Franz Fred Freddie
    Frederick Friedrich Garrison Gene Geoffrey George Gerald Gertrude Gilbert Gore Gordon Grace Graham Groucho Gus Guy Hal
    Hank Hans Harold Heinrich Harriet Harry Harvey Helen Henry Herbert Herman Homer Howard Hugh Hunter Ian Irving Isaac
    Isaiah Ivan Jack Jacob Jacques Johann James Jane Janet Jean Jeff Jefferson Jerome Jerry Jesse Jim Jimmy Joan
    Joe Joel John Johnny Jonathan Joseph Josh Joyce Judith Judy Julia Julian Julius Karl Kate Katharine
    Kathy Keith Ken Kenneth Kevin Kurt Larry Laura Lawrence Leo Leon Leonard Leonardo Les Ludwig Lewis Lily Linda Linus
    Lisa Lou Louis Louise Lucy Malcolm Margaret Marie Marilyn Marion Mark Marshall Martha Martin Marvin
    Mary Matthew Max Maxwell Melvin Michael Mickey Mike Milton Moe Nancy Ned Neil Nick Noel Norm Norman
    Ogden Oliver Oscar Pat Patrick Paul Peggy Percy Pete Pierre Peter Phil Philip Phyllis Ralph Randy Ray Raymond
    Rex Richard Rick Rita Rob Robert Robin Rodney Roger Ron Ronald Rose Roy Rudyard Russell Ruth Sally Sam
    Samuel Sarah Saul Scott Sean Sidney Simon Soren Sophie Stan Stanley Stephen Steve Steven Stuart Sue Susan
    Susanna Ted Teddy Theodore Thomas Tim Timothy Tom Tommy Tony Victor Vince Vincent Virginia Wallace Walt
    Walter Warren Wayne Wendell Wilbur Will William Willie Winston Wolfgang Woody Yogi Zsa""".split()
)
# First names that are also ordinary words (`Will you`, `the Art of`): a person only with a surname.
AMBIGUOUS_FIRST_NAMES = frozenset(
    "Bill Cole Dean Frank Gene Grace Guy Hal Hunter Jack Les Mark Max Norm Pat Ray Rex Rob Rose Sue Virginia Will".split()
)
# People quoted or named by one name.
SINGLE_NAMES = frozenset(
    """Aesop Archimedes Aristophanes Aristotle Bach Beethoven Buddha Caesar Cicero Churchill Cleopatra Confucius
    Copernicus Dante Darwin Descartes Dickens Diogenes Dostoevsky Edison Einstein Emerson Epictetus Epicurus
    Euclid Euripides Freud Galileo Gandhi Goethe Hegel Heraclitus Hitler Horace Jesus Juvenal Kafka Kant
    Keats Kennedy Kepler Kipling Lenin Lincoln Luther Machiavelli Marx Michelangelo Milton Moliere Montaigne
    Moses Mozart Napoleon Newton Nietzsche Nixon Ovid Picasso Plato Plutarch Pythagoras Reagan Rousseau
    Schopenhauer Seneca Shakespeare Shaw Socrates Solomon Sophocles Spinoza Stalin Swift Tacitus Thoreau
    Thucydides Tolstoy Twain Virgil Voltaire Whitman Wilde Wittgenstein Yeats Zeno""".split()
)
# Before a name, outside the entity (CoNLL tags `Mr. [Smith]`).
TITLES = frozenset(
    """Mr Mrs Ms Miss Dr Prof Professor Sir Dame Lady Lord Saint St President Senator Governor General Colonel
    Captain Chief Judge Justice King Queen Prince Princess Pope Rev Reverend Father Rabbi Coach Uncle Aunt""".split()
)
# Lower-case words that may sit inside a name (`Leonardo da Vinci`, `Ludwig van Beethoven`).
PARTICLES = frozenset({"da", "de", "del", "della", "di", "du", "la", "le", "van", "von", "der", "den", "y"})
# Capitalised words that start sentences or titles and are never a surname.
NOT_SURNAMES = frozenset(
    """A An And As At But By Do Does For From He Her His How I If In Is It Its Me My No Not Of On Or Our She So
    That The Their Then There They This To Was We What When Where Which Who Why Will With You Your Yes
    Jr Sr II III""".split()
)
LOCATIONS = (
    """Africa Alabama Alaska Amsterdam Antarctica Arizona Arkansas Asia Athens Atlanta Australia Austria Baltimore
    Belgium Berlin Bombay Boston Brazil Britain Brooklyn Buffalo California Canada Chicago Chile China Cincinnati
    Cleveland Colorado Connecticut Cuba Dallas Delaware Denmark Denver Detroit Dublin Edinburgh Egypt England
    Europe Finland Florida France Germany Greece Hawaii Holland Hollywood Houston Idaho Illinois India Indiana
    Iowa Iran Iraq Ireland Israel Italy Jamaica Japan Jerusalem Kansas Kentucky Korea London Louisiana
    Madrid Maine Manhattan Maryland Massachusetts Mexico Miami Michigan Minnesota Mississippi Missouri
    Montana Moscow Nebraska Nevada Norway Ohio Oklahoma Oregon Pakistan Paris Peking Pennsylvania Peru
    Philadelphia Pittsburgh Poland Portugal Prague Rome Russia Scotland Seattle Siberia Spain Sweden
    Switzerland Sydney Tennessee Texas Tokyo Toronto Turkey Utah Venice Vermont Vienna Vietnam Wales
    Wisconsin Wyoming""".split()
    + [
        "Hong Kong", "Las Vegas", "Los Angeles", "New England", "New Hampshire", "New Jersey", "New Mexico",
        "New Orleans", "New York", "New Zealand", "North America", "North Carolina", "North Dakota",
        "Rhode Island", "San Diego", "San Francisco", "Silicon Valley", "South Africa", "South America",
        "South Carolina", "South Dakota", "Soviet Union", "United Kingdom", "United States", "Great Britain",
        "West Virginia", "Washington D.C.",
    ]
)  # fmt: skip
ORGANIZATIONS = (
    "AT&T Berkeley CIA Congress DEC FBI Harvard IBM Intel IRS MIT Microsoft NASA NATO Oxford Pentagon "
    "Princeton Senate Stanford Xerox Yale".split()
    + [
        "Bell Labs", "General Motors", "House of Representatives", "New York Times", "Reader's Digest",
        "Supreme Court", "Wall Street Journal", "Washington Post", "United Nations", "Sun Microsystems",
    ]
)  # fmt: skip
SURNAME = re.compile(r"[A-Z][A-Za-z'’-]*[a-z]")
# Words that end an attribution's name run: sources that are not people (`-- Cheers`, `-- Nolo News`).
NOT_PERSON_WORDS = frozenset(
    """Anonymous Ancient Cheers Chinese Dictionary Digest Journal Law Magazine News Newsletter Old Post Press
    Proverb Review Saying Theatre Times Unknown Zen""".split()
)
# After an attribution's name: what may follow it (`-- Terry Pratchett, "The Light Fantastic"`).
NAME_END = frozenset({",", "(", '"', ";", "[", "<"})
DAYS = frozenset("Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split())
MONTHS = frozenset("January February March April May June July August September October November December".split())
AMBIGUOUS_MONTHS = frozenset({"March", "May"})  # verbs as often as months: only next to a number
YEAR = re.compile(r"1[0-9]{3}|20[0-9]{2}$")
DAY_NUMBER = re.compile(r"[0-9]{1,2}(st|nd|rd|th)?$")
YEAR_CUES = frozenset({"in", "of", "since", "until", "by", "from", "In"})
SENTENCE_END = frozenset({".", "!", "?", ":", '"', "--", "-"})

ENTITY_TYPES = ("PER", "ORG", "LOC", "DATE")
TAG_NAMES = ("O", *(f"{p}-{t}" for t in ENTITY_TYPES for p in ("B", "I")))


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(text)


def _phrases(entries) -> dict[tuple[str, ...], int]:
    return {tuple(tokenize(e)): len(tokenize(e)) for e in entries}


LOCATION_PHRASES = _phrases(LOCATIONS)
ORGANIZATION_PHRASES = _phrases(ORGANIZATIONS)
MAX_PHRASE = max(max(LOCATION_PHRASES.values()), max(ORGANIZATION_PHRASES.values()))


def _is_capitalised(token: str) -> bool:
    return token[:1].isupper() and token not in NOT_SURNAMES


def _is_initial(token: str) -> bool:
    return bool(re.fullmatch(r"[A-Z]\.", token))


def _name_run(tokens: list[str], start: int) -> int:
    """End (exclusive) of a person name starting at `start`: capitalised words, initials, particles."""
    end = start + 1
    while end < len(tokens):
        token = tokens[end]
        if _is_initial(token) or (_is_capitalised(token) and SURNAME.fullmatch(token)):
            end += 1
        elif token in PARTICLES and end + 1 < len(tokens) and _is_capitalised(tokens[end + 1]):
            end += 2
        else:
            break
    return end


def _attribution_start(tokens: list[str]) -> int | None:
    """Index just after the last `--` (the fortunes' attribution mark), if a name-like word follows it."""
    for i in range(len(tokens) - 1, -1, -1):
        if tokens[i] == "--":
            return i + 1
    return None


def _phrase_at(tokens: list[str], i: int, phrases: dict) -> int:
    for n in range(min(MAX_PHRASE, len(tokens) - i), 0, -1):
        if tuple(tokens[i : i + n]) in phrases:
            return n
    return 0


def _date_at(tokens: list[str], i: int) -> int:
    token = tokens[i]
    if token in DAYS:
        return 1
    if token in MONTHS:
        n = 1
        if i + 1 < len(tokens) and DAY_NUMBER.match(tokens[i + 1]):
            n = 2
            if i + 3 < len(tokens) and tokens[i + 2] == "," and YEAR.match(tokens[i + 3]):
                n = 4
        elif i + 1 < len(tokens) and YEAR.match(tokens[i + 1]):
            n = 2
        if token in AMBIGUOUS_MONTHS and n == 1 and not (i > 0 and DAY_NUMBER.match(tokens[i - 1])):
            return 0
        return n
    return 0


def tag_tokens(tokens: list[str]) -> list[str]:
    """BIO tags for one entry's tokens."""
    tags = ["O"] * len(tokens)
    attribution = _attribution_start(tokens)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in TITLES and i + 1 < len(tokens) and (tokens[i + 1] == "." or tokens[i + 1][:1].isupper()):
            i += 1  # `Mr. Smith`, `Lord Chief Justice`: titles stay outside; a name may follow
            continue
        span = _entity_at(tokens, i, attribution)
        if span is None:
            i += 1
            continue
        end, kind = span
        tags[i] = f"B-{kind}"
        tags[i + 1 : end] = [f"I-{kind}"] * len(tags[i + 1 : end])
        i = end
    return tags


def _attributed_person_at(tokens: list[str], i: int, starts_name: bool) -> int | None:
    """End of the person named where the attribution starts (`-- Mark Twain`), or None."""
    token = tokens[i]
    if starts_name or token in SINGLE_NAMES:
        return _name_run(tokens, i)
    if _is_capitalised(token) and SURNAME.fullmatch(token):
        # An unknown first name (`-- Gustave Droz`, `-- Yoda`): up to four name-like words that end
        # the entry or are followed by a comma or a quoted title, none of them a possessive or a
        # word that names a source rather than a person.
        end = _name_run(tokens, i)
        run = tokens[i:end]
        if (
            end - i <= 4
            and (end == len(tokens) or tokens[end] in NAME_END)
            and not any(t.endswith(("'s", "’s")) or t in NOT_PERSON_WORDS for t in run)
            and _phrase_at(tokens, i, LOCATION_PHRASES) + _phrase_at(tokens, i, ORGANIZATION_PHRASES) == 0
        ):
            return end
    return None


def _entity_at(tokens: list[str], i: int, attribution: int | None) -> tuple[int, str] | None:
    """(end, entity type) of the entity starting at token `i`, or None: the rules in their order of priority."""
    token = tokens[i]
    sentence_start = i == 0 or tokens[i - 1] in SENTENCE_END
    after_title = i > 0 and (tokens[i - 1] in TITLES or (tokens[i - 1] == "." and i > 1 and tokens[i - 2] in TITLES))
    starts_name = token not in TITLES and (
        token in FIRST_NAMES or _is_initial(token) or after_title and _is_capitalised(token)
    )
    if i == attribution:
        end = _attributed_person_at(tokens, i, starts_name)
        if end is not None:
            return end, "PER"
    n = _phrase_at(tokens, i, ORGANIZATION_PHRASES) or 0
    if n and not starts_name:
        return i + n, "ORG"
    next_is_name = i + 1 < len(tokens) and (_is_capitalised(tokens[i + 1]) or _is_initial(tokens[i + 1]))
    if starts_name and (after_title or next_is_name):
        end = _name_run(tokens, i)
        if end - i >= 2 or after_title:
            return end, "PER"
    n = _phrase_at(tokens, i, LOCATION_PHRASES)
    if n:
        return i + n, "LOC"
    n = _date_at(tokens, i)
    if n:
        return i + n, "DATE"
    if YEAR.match(token) and len(token) == 4 and i > 0 and (tokens[i - 1] in YEAR_CUES or (
        attribution is not None and i > attribution and tokens[i - 1] == ",")):  # fmt: skip
        return i + 1, "DATE"
    if token in SINGLE_NAMES or (token in FIRST_NAMES and token not in AMBIGUOUS_FIRST_NAMES and not sentence_start):
        return i + 1, "PER"
    return None


def tag_text(text: str) -> tuple[list[str], list[str]]:
    tokens = tokenize(text)
    return tokens, tag_tokens(tokens)
