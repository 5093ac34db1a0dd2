"""The wording ``clauses`` builds contract clauses from: phrasings, boilerplate, names, money, places.

Every phrasing is a ``str.format`` template whose slots decide the gold: ``{P}`` is the company the clause
gives the right or duty to (the gold ``party``; a phrasing without it binds both parties alike, party
null), ``{O}`` and ``{Q}`` are other companies (distractors), ``{D}`` the clause's main period as a noun
(``thirty (30) days``), ``{DA}`` the same period as an adjective (``12-month``), ``{D2}`` a second period
that is not the gold one, ``{M}`` the money amount (amount and currency), ``{J}`` the governing place.
A field whose slot is absent is null in the gold.

Train and eval never share a phrasing, a boilerplate sentence or a company-name stem (the first
syllables are split), so the eval measures generalisation to new wording and new names; the values
(periods, amounts, currencies, places) are shared, as any competent model must know them.
"""

from __future__ import annotations

__all__ = [
    "BOILERPLATE",
    "CLAUSE_TYPES",
    "CRITICAL_TYPES",
    "CURRENCY_NAMES",
    "CURRENCY_SYMBOLS",
    "CURRENCY_WEIGHTS",
    "EXTRA_JURISDICTION",
    "FIRST_SYLLABLES",
    "JURISDICTIONS",
    "LATER_SYLLABLES",
    "PERIODS",
    "PHRASINGS",
    "RARE_JURISDICTIONS",
    "SECTORS",
    "SUFFIXES",
]

CLAUSE_TYPES = (
    "governing_law",
    "termination",
    "payment",
    "liability_cap",
    "confidentiality",
    "auto_renewal",
    "assignment",
)
CRITICAL_TYPES = frozenset({"payment", "liability_cap"})  # the clauses that move money

# split -> clause type -> phrasings
PHRASINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "governing_law": (
            "The law of {J} applies to this contract and to any claim arising from it.",
            "This contract between {O} and {Q} is subject to the laws of {J}.",
            "All questions about the meaning of this contract will be decided under the law of {J}.",
            "Governing law: {J}. The parties accept that its courts may hear any dispute.",
        ),
        "termination": (
            "{P} can end this contract at any time with {D}' notice in writing to {O}.",
            "Either party can end this contract with {D}' written notice.",
            "{P} has the right to end this contract for convenience, giving at least {D}' notice.",
            "If {O} breaks this contract and does not fix the breach within {D}, {P} may end it at once.",
            "{P} can end this contract straight away if {O} goes bankrupt.",
        ),
        "payment": (
            "{P} will pay {O} a fee of {M} within {D} of receiving each invoice.",
            "{P} pays {M} for the licence, due {D} after the start date.",
            "{P} must settle every invoice within {D}.",
            "The price for the goods is {M}, to be paid by {P} on delivery.",
        ),
        "liability_cap": (
            "{P} is liable for no more than {M} in total under this contract.",
            "The most {P} will have to pay for all claims under this contract is {M}.",
            "Neither side is liable to the other for more than {M}.",
            "{P} is not liable for claims made more than {D} after delivery, and its liability is capped "
            "at {M}.",
        ),
        "confidentiality": (
            "{P} must keep {O}'s confidential information secret for {D} after this contract ends.",
            "Both parties will keep the terms of this deal private for {D}.",
            "{P} will not share any non-public information it receives from {O}.",
            "{P} agrees to hold all business information of {O} in strict confidence for {D} from "
            "disclosure.",
        ),
        "auto_renewal": (
            "This contract renews by itself for another {D} unless either party opts out.",
            "{P} may stop the automatic renewal by telling {O} in writing; otherwise the contract "
            "continues for another {D}.",
            "The term extends automatically by {D} each time it ends, unless {P} says it does not want "
            "to renew.",
            "At the end of each term the contract renews for {D} at a renewal fee of {M}.",
            "The contract renews for another {D} unless {P} opts out at least {D2} before it ends.",
        ),
        "assignment": (
            "{P} may not hand over this contract to anyone else without {O}'s written approval.",
            "Neither side may transfer this contract without the other side's consent.",
            "{P} is free to transfer this contract to a company in its group.",
            "{P} may transfer this contract to a buyer of its business after giving {D}' notice.",
            "{P} can pass this contract to another firm if it pays {O} a fee of {M}.",
        ),
    },
    "eval": {
        "governing_law": (
            "This Agreement shall be governed by and construed in accordance with the laws of {J}.",
            "The parties agree that this Agreement is governed by the law of {J}.",
            "{O} and {Q} agree that the laws of {J} shall govern this Agreement and any dispute arising "
            "under it.",
            "This Agreement, and all claims arising out of it, shall be interpreted under the laws of {J}.",
            "Applicable Law. The laws of {J} apply, excluding its conflict-of-law rules.",
        ),
        "termination": (
            "{P} may terminate this Agreement by giving {O} not less than {D}' prior written notice.",
            "This Agreement may be terminated by either party upon {D}' notice to the other party.",
            "Should {O} fail to cure a material breach within {D} of written notice, {P} shall be "
            "entitled to terminate this Agreement forthwith.",
            "{P} reserves the right to terminate this Agreement on {D}' written notice.",
            "Each party may terminate this Agreement without cause by serving {D}' written notice.",
            "{P} may terminate this Agreement with immediate effect if {O} becomes insolvent.",
        ),
        "payment": (
            "{P} shall pay {O} the sum of {M} within {D} of the date of invoice.",
            "In consideration of the Services, {P} shall pay a fixed fee of {M} per month, payable within "
            "{D} of receipt of a valid invoice.",
            "All invoices issued to {P} are payable within {D} of the invoice date.",
            "{P} agrees to pay {M} upon execution of this Agreement.",
            "The total contract price of {M} shall be paid by {P} no later than {D} after acceptance.",
        ),
        "liability_cap": (
            "The aggregate liability of {P} under or in connection with this Agreement shall not exceed {M}.",
            "In no event shall {P} be liable to {O} for any amount in excess of {M}.",
            "The total liability of each party under this Agreement is limited to {M}.",
            "The maximum liability of {P} for all claims arising in any {DA} period shall be {M}.",
            "{P} shall have no liability for any claim notified later than {D} after completion, and its "
            "total liability shall not exceed {M}.",
        ),
        "confidentiality": (
            "{P} shall not disclose any Confidential Information of {O} to any third party for a period of "
            "{D} following the date of disclosure.",
            "Each party shall keep confidential all information received from the other party for {D} "
            "after termination of this Agreement.",
            "The Receiving Party, {P}, undertakes to maintain the confidentiality of the Disclosing "
            "Party's information for {D}.",
            "{P} shall treat the existence and terms of this Agreement as confidential.",
            "During the term and for {D} thereafter, {P} shall use the Confidential Information of {O} "
            "solely for the purposes of this Agreement.",
        ),
        "auto_renewal": (
            "This Agreement shall automatically renew for successive periods of {D} unless either party "
            "gives written notice of non-renewal at least {D2} before the end of the then-current term.",
            "Unless {P} notifies {O} of its intention not to renew, this Agreement shall be renewed "
            "automatically for a further {D}.",
            "Upon expiry of the Initial Term, this Agreement will automatically renew for consecutive {DA} "
            "terms.",
            "The subscription renews automatically for further terms of {D} at a fee of {M} per term "
            "unless {P} cancels it.",
            "This Agreement rolls over automatically for additional periods of {D}, and {P} may cancel "
            "any renewal by {D2}' notice.",
        ),
        "assignment": (
            "{P} shall not assign, transfer or subcontract any of its rights or obligations under this "
            "Agreement without the prior written consent of {O}.",
            "Neither party may assign this Agreement without the written consent of the other party.",
            "{P} may assign this Agreement to any of its affiliates upon {D}' written notice to {O}.",
            "Any assignment by {P} requires the prior written approval of {O} and a transfer fee of {M}.",
            "This Agreement may be assigned by {P} without consent in connection with a merger or sale of "
            "its assets.",
        ),
    },
}

# split -> sentences around a long clause: distractors (another company, a number that is not the amount,
# a date) and plain boilerplate. Slots: {X} a company not otherwise named, {O}, {N} a clause number,
# {REF} a reference number, {PCT} a percentage, {DATE} a date. None states a period, an amount or a place.
BOILERPLATE: dict[str, tuple[str, ...]] = {
    "train": (
        "This term is part of the supply contract between {O} and {X} signed on {DATE}.",
        "Nothing here gives {X} any rights.",
        "Order reference {REF} applies.",
        "Unpaid sums carry interest at {PCT} per cent a year.",
        "Section {N} sets out how notices are sent.",
        "This term still applies after the contract ends.",
        "Titles are only for ease of reading.",
    ),
    "eval": (
        "This clause applies to the Master Services Agreement dated {DATE} between {O} and {X}.",
        "For the avoidance of doubt, nothing in this clause shall confer any right on {X}.",
        "Purchase Order No. {REF} is incorporated into this Agreement by reference.",
        "Late payments bear interest at {PCT} per cent per annum above the base rate.",
        "References to clause {N} are to clauses of this Agreement as amended on {DATE}.",
        "This clause shall survive any termination or expiry of this Agreement.",
        "Headings are for convenience only and shall not affect the interpretation of this clause.",
        "Subject to clause {N}, the remaining provisions of this Agreement continue in full force and "
        "effect.",
    ),
}

# split -> a sentence naming the governing place, added to a few clauses of the other types
EXTRA_JURISDICTION = {
    "train": "The law of {J} applies to this term.",
    "eval": "This clause shall be governed by the laws of {J}.",
}

# clause type -> (unit, numbers) the clause's main period is drawn from; never 1 (plural units only)
PERIODS: dict[str, tuple[tuple[str, tuple[int, ...]], ...]] = {
    "termination": (
        ("days", (7, 10, 14, 15, 20, 21, 28, 30, 45, 60, 90, 120, 180)),
        ("weeks", (2, 3, 4, 6, 8, 12)),
        ("months", (2, 3, 4, 6, 9, 12)),
    ),
    "payment": (("days", (7, 10, 14, 15, 21, 28, 30, 45, 60, 75, 90)), ("weeks", (2, 3, 4, 6))),
    "liability_cap": (("months", (6, 12, 18, 24, 36)), ("years", (2, 3, 4, 5, 6))),
    "confidentiality": (("years", (2, 3, 4, 5, 7, 10, 15)), ("months", (6, 12, 18, 24, 36, 48))),
    "auto_renewal": (("months", (3, 6, 12, 18, 24, 36)), ("years", (2, 3, 4, 5)), ("days", (90, 180, 365))),
    "assignment": (("days", (10, 14, 15, 30, 45, 60, 90)), ("weeks", (2, 3, 4))),
    "notice": (("days", (30, 45, 60, 90, 120)),),  # {D2}: a second period that is not the gold one
}

# ISO 4217 code -> how often it is drawn; symbols and names a clause may write instead of the code
CURRENCY_WEIGHTS = {
    "EUR": 6,
    "USD": 6,
    "GBP": 5,
    "CHF": 2,
    "JPY": 1,
    "CAD": 2,
    "AUD": 2,
    "SEK": 1,
    "NOK": 1,
    "DKK": 1,
    "SGD": 1,
    "NZD": 1,
    "PLN": 1,
    "ZAR": 1,
}
CURRENCY_SYMBOLS = {"EUR": ("€",), "USD": ("$", "US$"), "GBP": ("£",)}
CURRENCY_NAMES = {
    "EUR": "euros",
    "USD": "US dollars",
    "GBP": "pounds sterling",
    "CHF": "Swiss francs",
    "JPY": "Japanese yen",
    "CAD": "Canadian dollars",
    "AUD": "Australian dollars",
    "SEK": "Swedish kronor",
    "NOK": "Norwegian kroner",
}

# the governing place (gold) -> the ways a clause names it; the gold is always a substring
JURISDICTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("England and Wales", ("England and Wales",)),
    ("Scotland", ("Scotland",)),
    ("Northern Ireland", ("Northern Ireland",)),
    ("Ireland", ("Ireland",)),
    ("France", ("France",)),
    ("Germany", ("Germany", "the Federal Republic of Germany")),
    ("Austria", ("Austria",)),
    ("Switzerland", ("Switzerland",)),
    ("Sweden", ("Sweden",)),
    ("Norway", ("Norway",)),
    ("Denmark", ("Denmark",)),
    ("Finland", ("Finland",)),
    ("Spain", ("Spain",)),
    ("Portugal", ("Portugal",)),
    ("Italy", ("Italy",)),
    ("Belgium", ("Belgium",)),
    ("Luxembourg", ("Luxembourg", "the Grand Duchy of Luxembourg")),
    ("Poland", ("Poland",)),
    ("Singapore", ("Singapore", "the Republic of Singapore")),
    ("Hong Kong", ("Hong Kong",)),
    ("Japan", ("Japan",)),
    ("New Zealand", ("New Zealand",)),
    ("New South Wales", ("New South Wales", "the State of New South Wales")),
    ("Victoria", ("the State of Victoria",)),
    ("Ontario", ("Ontario", "the Province of Ontario")),
    ("Quebec", ("the Province of Quebec",)),
    ("British Columbia", ("British Columbia", "the Province of British Columbia")),
    ("New York", ("New York", "the State of New York")),
    ("Delaware", ("Delaware", "the State of Delaware")),
    ("California", ("California", "the State of California")),
    ("Texas", ("the State of Texas",)),
    ("Illinois", ("the State of Illinois",)),
    ("Massachusetts", ("the Commonwealth of Massachusetts",)),
)
# eval only: places the training split never names
RARE_JURISDICTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Liechtenstein", ("the Principality of Liechtenstein", "Liechtenstein")),
    ("Iceland", ("Iceland",)),
    ("Malta", ("Malta",)),
    ("Estonia", ("Estonia",)),
    ("Bermuda", ("Bermuda",)),
    ("Manitoba", ("the Province of Manitoba",)),
    ("Vermont", ("the State of Vermont",)),
    ("Tasmania", ("the State of Tasmania",)),
)

# company names: an invented stem (a first syllable + two later ones), maybe a sector word, a suffix.
# The first syllables are split between train and eval, so no name is in both.
FIRST_SYLLABLES = {
    "train": (
        "Bry",
        "Cald",
        "Dov",
        "Fen",
        "Grel",
        "Hask",
        "Jor",
        "Lud",
        "Morv",
        "Nesk",
        "Pell",
        "Rusk",
        "Tov",
    ),
    "eval": (
        "Ael",
        "Brov",
        "Corth",
        "Drel",
        "Esk",
        "Fald",
        "Gorm",
        "Hyl",
        "Kav",
        "Lorn",
        "Quen",
        "Vask",
        "Zel",
    ),
}
LATER_SYLLABLES = (
    "a",
    "an",
    "ar",
    "e",
    "el",
    "en",
    "ick",
    "ion",
    "is",
    "o",
    "or",
    "ett",
    "ova",
    "und",
    "ven",
)
SECTORS = (
    "Analytics",
    "Biotech",
    "Ceramics",
    "Components",
    "Energy",
    "Foods",
    "Freight",
    "Holdings",
    "Instruments",
    "Logistics",
    "Maritime",
    "Media",
    "Pharma",
    "Robotics",
    "Software",
    "Systems",
    "Textiles",
    "Timber",
)
SUFFIXES = (
    "Ltd",
    "Limited",
    "plc",
    "GmbH",
    "AG",
    "Inc.",
    "Corp.",
    "LLC",
    "S.A.",
    "S.L.",
    "SAS",
    "B.V.",
    "N.V.",
    "S.r.l.",
    "Oy",
    "AB",
    "A/S",
    "Pty Ltd",
)
