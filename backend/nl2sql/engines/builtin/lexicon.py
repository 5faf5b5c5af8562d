"""Words of a question: tokens, lemmas, synonyms, number words and the small closed vocabularies."""

from __future__ import annotations

import re
from dataclasses import dataclass

from backend.nl2sql.engines.builtin.idioms import rewrite_idioms

NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "fifty": 50, "hundred": 100, "dozen": 12,
}  # fmt: skip

MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4,
    "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}  # fmt: skip

STOP_WORDS = frozenset(
    """
    a an the of for to in on at by with from and or is are was were be been being do does
    did what which who whom whose where when how there their them they it its this that
    these those all any each every me my i we our you your please give show list find tell
    get display return name names as than then also both only just s have has had having
    can could would will shall should may might must about into per also whether if out up
    so such other some many much whole entire value values info information detail details
    record records
    """.split()  # noqa: SIM905 - a word list reads better as prose
)
"""Words that carry no schema meaning on their own (intent words are read before this filter)."""

IRREGULAR = {
    "people": "person", "persons": "person", "men": "man", "women": "woman",
    "children": "child", "mice": "mouse", "feet": "foot", "teeth": "tooth", "geese": "goose",
    "data": "data", "media": "media", "criteria": "criterion", "indices": "index",
    "analyses": "analysis", "statuses": "status", "addresses": "address", "classes": "class",
    "businesses": "business", "boxes": "box", "taxes": "tax", "matches": "match",
    "branches": "branch", "dishes": "dish", "churches": "church", "series": "series",
    "species": "species", "news": "news", "bus": "bus", "gas": "gas", "status": "status",
    "address": "address", "class": "class", "business": "business", "process": "process",
    "this": "this", "is": "is", "was": "was", "has": "has", "as": "as", "us": "us",
    "ids": "id", "does": "do", "goes": "go", "doesn": "do",
    "its": "its", "his": "his", "yes": "yes", "less": "less", "across": "across",
    "plus": "plus", "campus": "campus", "virus": "virus", "bonus": "bonus", "canvas": "canvas",
    "alias": "alias", "atlas": "atlas", "thesis": "thesis", "analysis": "analysis",
    "basis": "basis", "axis": "axis", "lens": "lens", "sales": "sale", "movies": "movie",
    "cookies": "cookie", "employees": "employee", "employee": "employee", "fees": "fee",
    "degrees": "degree", "trees": "tree", "leaves": "leaf", "lives": "life", "wives": "wife",
    "knives": "knife", "shelves": "shelf", "halves": "half", "loaves": "loaf",
    "genres": "genre", "genre": "genre", "hours": "hour", "times": "time", "sizes": "size",
    "prices": "price", "types": "type", "rates": "rate", "dates": "date", "codes": "code",
    "roles": "role", "titles": "title", "names": "name", "states": "state", "scores": "score",
    "cities": "city", "countries": "country", "categories": "category", "companies": "company",
}  # fmt: skip

ABBREVIATIONS = {
    "fname": "first name", "lname": "last name", "dept": "department", "num": "number",
    "no": "number", "qty": "quantity", "amt": "amount", "desc": "description",
    "descr": "description", "addr": "address", "dob": "date of birth", "tot": "total",
    "cred": "credit", "prof": "professor", "emp": "employee", "stu": "student", "id": "id",
    "avg": "average", "max": "maximum", "min": "minimum", "pct": "percent", "yr": "year",
    "yrs": "year", "dt": "date", "nbr": "number", "cnt": "count", "loc": "location",
    "org": "organization", "mgr": "manager", "cust": "customer", "prod": "product",
    "cat": "category", "msg": "message", "txn": "transaction", "ts": "timestamp",
    "pos": "position", "lat": "latitude", "long": "longitude", "lng": "longitude",
    "temp": "temperature", "pop": "population", "sal": "salary", "phone": "phone",
    "tel": "telephone", "dur": "duration", "lang": "language", "univ": "university",
    "acc": "account", "acct": "account", "bal": "balance", "std": "student",
    "apt": "apartment", "hrs": "hour", "hr": "hour", "mins": "minute", "secs": "second",
    "inv": "invoice", "ord": "order", "svc": "service", "mgmt": "management",
    "prc": "price", "qnty": "quantity", "quant": "quantity", "amnt": "amount",
    "mth": "month", "wk": "week", "wkly": "weekly",
    "mthly": "monthly", "cty": "city", "ctry": "country", "cntry": "country",
    "postcode": "postal code", "ref": "reference",
    "req": "request", "resp": "response", "sts": "status", "usr": "user",
    "pwd": "password", "img": "image", "pic": "picture", "doc": "document", "attr": "attribute",
    "grp": "group", "rgn": "region",
    "supp": "supplier", "vend": "vendor",
    "whse": "warehouse", "instr": "instructor", "crs": "course",
    "sect": "section", "bldg": "building", "rm": "room",
    "depart": "departure",
    "disc": "discount", "shp": "shipping", "recv": "received",
    "rcvd": "received", "sched": "scheduled",
    "trx": "transaction", "tx": "transaction",
    "pmt": "payment", "pymt": "payment", "paymt": "payment",
    "curr": "currency", "ccy": "currency", "perc": "percent", "avail": "available",
    "pkg": "package", "mfr": "manufacturer", "mfg": "manufacturing", "btch": "batch",
    "seq": "sequence", "src": "source", "dst": "destination", "dest": "destination",
    "orig": "origin",
}  # fmt: skip
"""Abbreviations common in column names, expanded before matching (not question words)."""

ACRONYMS = {
    "mrr": "monthly recurring revenue", "arr": "annual recurring revenue",
    "arpa": "average revenue per account", "arpu": "average revenue per user",
    "mau": "monthly active users", "dau": "daily active users", "wau": "weekly active users",
    "csat": "customer satisfaction", "nps": "net promoter score", "ltv": "lifetime value",
    "clv": "customer lifetime value", "cac": "customer acquisition cost",
    "aov": "average order value", "kpi": "key performance indicator", "sku": "stock keeping unit",
    "roi": "return on investment", "gmv": "gross merchandise value", "cogs": "cost of goods sold",
    "ebitda": "earnings before interest taxes depreciation and amortization",
    "yoy": "year over year", "ytd": "year to date", "mtd": "month to date",
    "fte": "full time equivalent", "pto": "paid time off", "sla": "service level agreement",
    "eta": "estimated time of arrival", "po": "purchase order", "uom": "unit of measure",
    "vat": "value added tax", "ssn": "social security number", "gpa": "grade point average",
    "fy": "fiscal year", "hq": "headquarters", "ceo": "chief executive officer",
    "cto": "chief technology officer", "cfo": "chief financial officer",
}  # fmt: skip
"""Acronyms found in column names and in questions: a column named by one is also linked by
its expansion (and a three-word name by its initials)."""

SYNONYMS: dict[str, tuple[str, ...]] = {
    "revenue": ("amount", "revenue", "sale", "total", "price"),
    "sale": ("amount", "revenue", "sale", "quantity"),
    "income": ("amount", "revenue", "salary", "income"),
    "earning": ("salary", "amount", "earning"),
    "pay": ("salary", "amount", "wage"),
    "wage": ("salary", "wage"),
    "cost": ("price", "cost", "amount", "fee"),
    "expensive": ("price", "cost"),
    "cheap": ("price", "cost"),
    "spend": ("amount", "price", "cost"),
    "spent": ("amount", "price", "cost"),
    "paid": ("amount", "payment"),
    "stock": ("stock", "inventory", "quantity"),
    "client": ("customer", "client", "account"),
    "customer": ("customer", "client", "account"),
    "buyer": ("customer",),
    "staff": ("employee", "staff"),
    "worker": ("employee", "staff", "worker"),
    "employee": ("employee", "staff", "personnel"),
    "personnel": ("employee", "staff"),
    "colleague": ("employee", "staff"),
    "supervisor": ("supervisor", "manager", "boss", "superior"),
    "boss": ("manager", "supervisor", "boss", "superior"),
    "bill": ("invoice", "bill"),
    "invoice": ("invoice", "bill"),
    "case": ("ticket", "case"),
    "seller": ("seller", "vendor", "supplier"),
    "vendor": ("supplier", "vendor"),
    "supplier": ("supplier", "vendor"),
    "item": ("item", "product"),
    "good": ("product", "item"),
    "purchase": ("order", "purchase"),
    "order": ("order", "purchase"),
    "film": ("film", "movie"),
    "movie": ("movie", "film"),
    "song": ("song", "track"),
    "track": ("track", "song"),
    "nation": ("country", "nation"),
    "country": ("country", "nation"),
    "town": ("city", "town"),
    "location": ("location", "address", "place", "site"),
    "review": ("review", "rating"),
    "old": ("age",),
    "age": ("age",),
    "young": ("age",),
    "born": ("birth",),
    "birthday": ("birth",),
    "kind": ("type", "category", "kind"),
    "sort": ("type", "kind"),
    "job": ("title", "job", "role", "position"),
    "position": ("position", "title", "role"),
    "phone": ("phone", "telephone", "cell"),
    "mail": ("email", "mail"),
    "email": ("email", "mail"),
    "gender": ("gender", "sex"),
    "sex": ("sex", "gender"),
    "long": ("length", "duration"),
    "heavy": ("weight",),
    "tall": ("height",),
    "big": ("size", "capacity"),
    "large": ("size", "capacity"),
    "capacity": ("capacity",),
    "called": ("name", "title"),
    "named": ("name", "title"),
    "title": ("title", "name"),
    "quantity": ("quantity", "amount", "unit"),
    "discontinue": ("discontinued",),
    "hire": ("hire",),
    "hired": ("hire",),
    "signup": ("signup",),
    "sign": ("signup",),
    "method": ("method", "type"),
    "ship": ("ship", "shipping"),
    "shipping": ("shipping", "ship"),
    "rating": ("rating", "score", "satisfaction", "star", "grade"),
    "satisfaction": ("satisfaction", "rating", "score"),
    "bracket": ("band", "bracket", "range", "bucket", "class"),
}
"""Question word -> schema words it may stand for (general business vocabulary)."""

PERSON_IN_CHARGE = frozenset({"rep", "representative", "salesperson", "salesman", "saleswoman"})
"""Words for the person who looks after a customer's rows ("each rep", "per sales
representative")."""

IN_CHARGE_ROLES = (
    ("rep",), ("representative",), ("salesperson",), ("account", "manager"), ("account", "owner"),
    ("account", "executive"),
)  # fmt: skip
"""Role words of a reference key naming that person (`account_manager_id`, `sales_rep_id`):
a plain `manager_id` is a boss and an `owner_id` an owner, not a rep."""

USE_VERBS = frozenset(
    {"run", "runs", "running", "ran", "utilise", "utilises", "utilising", "utilised", "utilize",
     "utilizes", "utilizing", "utilized", "using", "employing"}
)  # fmt: skip
"""Verbs that say something is used when they take an object ("customers running both
Slack and Jira", "accounts utilising the API")."""

EVENT_WORDS: dict[str, frozenset[str]] = {
    verb: frozenset(words)
    for verbs, words in (
        (("lose", "lost", "churn", "cancel", "quit", "drop", "leave", "left"),
         ("churned", "churn", "cancelled", "canceled", "cancellation", "ended", "end", "left",
          "terminated", "closed")),
        (("sign", "signup", "join", "joined", "register", "acquire", "acquired", "onboard",
          "onboarded", "gain", "gained", "win", "won", "new"),
         ("created", "creation", "signup", "registered", "registration", "joined", "start",
          "started", "opened")),
        (("hire", "hired", "recruit", "recruited", "employ", "employed"),
         ("hire", "hired", "joined", "start", "started")),
        (("resolve", "resolved", "close", "closed", "solve", "solved", "fix", "fixed",
          "repair", "repaired", "complete", "completed", "finish", "finished"),
         ("closed", "resolved", "solved", "completed", "fixed", "repaired", "finished")),
        (("pay", "paid", "collect", "collected", "settle", "settled"),
         ("paid", "payment", "settled", "collected")),
        (("bill", "billed", "invoice", "invoiced", "issue", "issued", "charge", "charged"),
         ("issue", "issued", "invoice", "billed", "billing")),
        (("ship", "shipped", "deliver", "delivered", "dispatch", "dispatched", "send", "sent"),
         ("shipped", "shipping", "ship", "delivered", "delivery", "dispatched", "sent")),
        (("open", "opened", "raise", "raised", "file", "filed", "submit", "submitted", "log",
          "logged", "come", "came"),
         ("opened", "created", "submitted", "raised", "filed", "logged")),
        (("order", "ordered", "buy", "bought", "purchase", "purchased", "place", "placed"),
         ("order", "ordered", "purchase", "purchased", "placed")),
        (("launch", "launched", "release", "released", "introduce", "introduced"),
         ("launched", "launch", "released", "release", "introduced")),
        (("expire", "expired", "due"), ("expire", "expired", "expiry", "expiration", "due")),
    )
    for verb in verbs
}  # fmt: skip
"""Verbs of events in a question -> first words of the date columns that record them ("lose"
customers -> `churned_at`, "sign up" -> `created_at`, "resolve" -> `closed_at`)."""

_TOKEN = re.compile(
    r"""(?P<quoted>"[^"]+"|'[^']{1,60}'(?![a-z])|“[^”]+”)
    |(?P<date>\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?)
    |(?P<number>-?\d+(?:,\d{3})*(?:\.\d+)?%?)
    |(?P<word>[A-Za-z][A-Za-z0-9_\-\.]*[A-Za-z0-9]|[A-Za-z])
    |(?P<punct>[?,;:!()\-<>=])""",
    re.VERBOSE,
)


@dataclass(slots=True)
class Token:
    text: str
    """As written (quotes stripped)."""
    lemma: str
    """Lower case, singular; for numbers the canonical number text."""
    kind: str
    """`word`, `number`, `quoted`, `date` or `punct`."""
    index: int = 0

    @property
    def is_capitalised(self) -> bool:
        return self.kind == "word" and self.text[:1].isupper()

    @property
    def number(self) -> float | None:
        if self.kind == "number":
            return float(self.lemma)
        return None


def lemmatise(word: str) -> str:
    """A crude but predictable singular form of an English word."""
    w = word.lower()
    if w in IRREGULAR:
        return IRREGULAR[w]
    if len(w) <= 3 or not w.isalpha():
        return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("sses", "shes", "ches", "xes", "zes")):
        return w[:-2]
    if w.endswith("ss") or w.endswith("us") or w.endswith("is"):
        return w
    if w.endswith("s"):
        return w[:-1]
    return w


_SAME_WORD = {"mean": "average", "avg": "average"}
"""Column words that are spelled differently but mean the same (`mean_temp` = average)."""


def split_identifier(name: str) -> list[str]:
    """`customer_firstName` -> ["customer", "first", "name"], abbreviations expanded."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", spaced) if p]
    merged: list[str] = []
    for part in parts:
        if merged and len(merged[-1]) == 1 and (merged[-1] + part).lower() in ABBREVIATIONS:
            merged[-1] += part  # `LName` -> "L", "Name" -> lname -> last name
        else:
            merged.append(part)
    parts = merged
    words: list[str] = []
    for part in parts:
        low = part.lower()
        expanded = ABBREVIATIONS.get(low)
        if expanded and expanded != low:
            words.extend(lemmatise(x) for x in expanded.split())
        else:
            words.append(_SAME_WORD.get(low, lemmatise(low)))
    return words


def _number_text(raw: str) -> str:
    raw = raw.replace(",", "").rstrip("%")
    value = float(raw)
    return str(int(value)) if value == int(value) and "." not in raw else str(value)


_MONEY = re.compile(r"(?<![\w.])[$€£¥]\s?(?=\d)")
_SCALED = re.compile(
    r"(?<![\w.])(\d+(?:,\d{3})*(?:\.\d+)?)(?:(k|K|M|bn|mn)|\s?(million|billion|thousand))(?!\w)"
)
_SCALES = {
    "k": 1e3,
    "thousand": 1e3,
    "m": 1e6,
    "mn": 1e6,
    "million": 1e6,
    "bn": 1e9,
    "billion": 1e9,
}


def _scaled(match: re.Match[str]) -> str:
    unit = (match.group(2) or match.group(3)).lower()
    value = float(match.group(1).replace(",", "")) * _SCALES[unit]
    return str(int(value)) if value == int(value) else str(value)


def normalise_amounts(question: str) -> str:
    """Numbers as a person writes amounts, as plain numbers: "€1,200" -> 1,200, "$1.5M" ->
    1500000, "20k" -> 20000, "15 %" -> 15%. A currency symbol carries no meaning here (a
    database stores amounts in one currency per column)."""
    question = _MONEY.sub("", question)
    question = _SCALED.sub(_scaled, question)
    return re.sub(r"(\d)\s+(%|percent\b|per cent\b)", r"\1%", question)


_UNMARKED_NEGATION = re.compile(
    r"(?i)\b(?:(do|does|did|is|are|was|were|has|have|had|could|would|should)nt|(can)not)['’]?(?!\w)"
)
"""A negation typed without its apostrophe ("didnt", "doesnt", "isnt", "cannot", "didnt'"):
the verb and "not", as "didn't" is read."""


_QUOTED = re.compile(r"(\"[^\"]*\"|“[^”]*”|(?<!\w)'[^']*')")
"""Quoted text, left as written (a value "Dont Look Back" is no negation)."""


def _verb_and_not(match: re.Match[str]) -> str:
    return f"{match.group(1) or match.group(2)} not"


def tokenise(question: str) -> list[Token]:
    question = rewrite_idioms(normalise_amounts(question))
    question = re.sub(r"(?i)\bfirst and last names?\b", "first name and last name", question)
    question = re.sub(r"(?i)n['’]t\b", " not", question)
    question = "".join(
        part if k % 2 else _UNMARKED_NEGATION.sub(_verb_and_not, part)
        for k, part in enumerate(_QUOTED.split(question))
    )
    question = re.sub(r"(?i)(\w)['’]s\b", r"\1", question)
    question = re.sub(r"(?i)(\ws)['’](\s)", r"\1\2", question)
    tokens: list[Token] = []
    for match in _TOKEN.finditer(question):
        kind = match.lastgroup or "word"
        text = match.group(kind)
        if kind == "quoted":
            inner = text[1:-1].strip()
            tokens.append(Token(inner, inner.lower(), "quoted"))
        elif kind == "date":
            tokens.append(Token(text, text, "date"))
        elif kind == "number":
            tokens.append(Token(text, _number_text(text), "number"))
        elif kind == "word":
            low = text.lower().strip(".")
            if low in NUMBER_WORDS and not (low == "one" and tokens and tokens[-1].lemma == "each"):
                tokens.append(Token(text, str(NUMBER_WORDS[low]), "number"))
                continue
            opening = not tokens and text[1:].islower()  # "Sign-ups last month?": only the
            # sentence's capital, not a name's ("Jean-Luc", "Coca-Cola" keep whole)
            if "-" in low and (opening or not text[:1].isupper()):
                for piece in low.split("-"):
                    if piece:
                        tokens.append(Token(piece, lemmatise(piece), "word"))
                continue
            if "'" in low:
                low = low.split("'")[0]
            lemma = "we" if text == "us" else lemmatise(low)  # "pay us"; "the US" is a place
            tokens.append(Token(text.strip("."), lemma, "word"))
        else:
            tokens.append(Token(text, text, "punct"))
    for i, tok in enumerate(tokens):
        tok.index = i
    return tokens


EVENT_NOUNS = {
    "resolution": "resolve", "closure": "close", "closing": "close", "payment": "pay",
    "delivery": "deliver", "shipping": "ship", "shipment": "ship", "completion": "complete",
    "response": "respond", "approval": "approve", "fulfilment": "fulfil",
    "fulfillment": "fulfill", "turnaround": "close", "handling": "close",
}  # fmt: skip
"""Nouns of events ("resolution time") -> the verb whose date column records them."""
