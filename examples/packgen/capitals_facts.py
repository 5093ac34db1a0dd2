"""The facts capitals-mc's generator draws on: capitals, units, elements, and science and physical facts.

Every fact here is meant to be correct and unambiguous. Countries whose capital is disputed, split
between cities, recently moved or named like another place (Bolivia, South Africa, Eswatini, Benin,
Côte d'Ivoire, Tanzania, Sri Lanka, Malaysia, Kazakhstan, Burundi, Montenegro, Israel, Yemen, Sudan,
Libya, Georgia, Nauru, Kiribati, Tuvalu, Equatorial Guinea, Palau, disputed states) are left out, and so
are countries whose capital repeats the country's name (Mexico City, Kuwait City, Djibouti, Monaco,
Luxembourg, Tunis, Algiers ...), where the gold would be guessable from its form.
"""

from __future__ import annotations

# (country as written in a sentence, capital, region, difficulty, other large cities of the country).
# "hard": the largest city is not the capital (the other cities are then its distractors), or the
# country is small and rarely asked about.
COUNTRIES: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    # Curated countries (the hand-written items ask their capital already).
    ("France", "Paris", "europe", "easy", ()),
    ("Japan", "Tokyo", "asia", "easy", ()),
    ("Italy", "Rome", "europe", "easy", ()),
    ("Germany", "Berlin", "europe", "easy", ()),
    ("Spain", "Madrid", "europe", "easy", ()),
    ("Egypt", "Cairo", "africa", "easy", ()),
    ("Russia", "Moscow", "europe", "easy", ()),
    ("China", "Beijing", "asia", "easy", ()),
    ("the United Kingdom", "London", "europe", "easy", ()),
    ("Greece", "Athens", "europe", "easy", ()),
    ("Portugal", "Lisbon", "europe", "medium", ()),
    ("Ireland", "Dublin", "europe", "medium", ()),
    ("Austria", "Vienna", "europe", "medium", ()),
    ("Sweden", "Stockholm", "europe", "medium", ()),
    ("Denmark", "Copenhagen", "europe", "medium", ()),
    ("Finland", "Helsinki", "europe", "medium", ()),
    ("Poland", "Warsaw", "europe", "medium", ()),
    ("Hungary", "Budapest", "europe", "medium", ()),
    ("Thailand", "Bangkok", "asia", "medium", ()),
    ("South Korea", "Seoul", "asia", "medium", ()),
    ("India", "New Delhi", "asia", "medium", ()),
    ("Kenya", "Nairobi", "africa", "medium", ()),
    ("Argentina", "Buenos Aires", "americas", "medium", ()),
    ("Cuba", "Havana", "americas", "medium", ()),
    ("Canada", "Ottawa", "americas", "hard", ("Toronto", "Montreal", "Vancouver")),
    ("Australia", "Canberra", "oceania", "hard", ("Sydney", "Melbourne", "Perth")),
    ("Brazil", "Brasilia", "americas", "hard", ("Sao Paulo", "Rio de Janeiro", "Salvador")),
    ("Turkey", "Ankara", "asia", "hard", ("Istanbul", "Izmir", "Antalya")),
    ("Switzerland", "Bern", "europe", "hard", ("Zurich", "Geneva", "Basel")),
    ("New Zealand", "Wellington", "oceania", "hard", ("Auckland", "Christchurch", "Hamilton")),
    ("Nigeria", "Abuja", "africa", "hard", ("Lagos", "Kano", "Ibadan")),
    ("Norway", "Oslo", "europe", "easy", ()),
    ("Peru", "Lima", "americas", "medium", ()),
    ("Chile", "Santiago", "americas", "medium", ()),
    ("Colombia", "Bogota", "americas", "medium", ()),
    ("Belgium", "Brussels", "europe", "medium", ()),
    ("the Czech Republic", "Prague", "europe", "medium", ()),
    ("Iran", "Tehran", "asia", "medium", ()),
    ("Iraq", "Baghdad", "asia", "medium", ()),
    ("Saudi Arabia", "Riyadh", "asia", "medium", ()),
    ("the Philippines", "Manila", "asia", "medium", ()),
    ("Vietnam", "Hanoi", "asia", "medium", ()),
    ("Ukraine", "Kyiv", "europe", "medium", ()),
    ("Morocco", "Rabat", "africa", "hard", ("Casablanca", "Marrakesh", "Tangier")),
    ("Pakistan", "Islamabad", "asia", "hard", ("Karachi", "Lahore", "Peshawar")),
    # Europe.
    ("Albania", "Tirana", "europe", "medium", ()),
    ("Belarus", "Minsk", "europe", "medium", ()),
    ("Bosnia and Herzegovina", "Sarajevo", "europe", "medium", ()),
    ("Bulgaria", "Sofia", "europe", "medium", ()),
    ("Croatia", "Zagreb", "europe", "medium", ()),
    ("Cyprus", "Nicosia", "europe", "medium", ()),
    ("Estonia", "Tallinn", "europe", "medium", ()),
    ("Iceland", "Reykjavik", "europe", "medium", ()),
    ("Latvia", "Riga", "europe", "medium", ()),
    ("Liechtenstein", "Vaduz", "europe", "hard", ()),
    ("Lithuania", "Vilnius", "europe", "medium", ()),
    ("Malta", "Valletta", "europe", "hard", ()),
    ("Moldova", "Chisinau", "europe", "hard", ()),
    ("North Macedonia", "Skopje", "europe", "hard", ()),
    ("Romania", "Bucharest", "europe", "medium", ()),
    ("Serbia", "Belgrade", "europe", "medium", ()),
    ("Slovakia", "Bratislava", "europe", "medium", ()),
    ("Slovenia", "Ljubljana", "europe", "medium", ()),
    # Asia.
    ("Afghanistan", "Kabul", "asia", "medium", ()),
    ("Armenia", "Yerevan", "asia", "medium", ()),
    ("Azerbaijan", "Baku", "asia", "medium", ()),
    ("Bahrain", "Manama", "asia", "hard", ()),
    ("Bangladesh", "Dhaka", "asia", "medium", ()),
    ("Bhutan", "Thimphu", "asia", "hard", ()),
    ("Brunei", "Bandar Seri Begawan", "asia", "hard", ()),
    ("Cambodia", "Phnom Penh", "asia", "medium", ()),
    ("Jordan", "Amman", "asia", "medium", ()),
    ("Kyrgyzstan", "Bishkek", "asia", "hard", ()),
    ("Laos", "Vientiane", "asia", "hard", ()),
    ("Lebanon", "Beirut", "asia", "medium", ()),
    ("the Maldives", "Male", "asia", "hard", ()),
    ("Mongolia", "Ulaanbaatar", "asia", "medium", ()),
    ("Myanmar", "Naypyidaw", "asia", "hard", ("Yangon", "Mandalay")),
    ("Nepal", "Kathmandu", "asia", "medium", ()),
    ("North Korea", "Pyongyang", "asia", "medium", ()),
    ("Oman", "Muscat", "asia", "medium", ()),
    ("Qatar", "Doha", "asia", "medium", ()),
    ("Syria", "Damascus", "asia", "medium", ()),
    ("Tajikistan", "Dushanbe", "asia", "hard", ()),
    ("Turkmenistan", "Ashgabat", "asia", "hard", ()),
    ("the United Arab Emirates", "Abu Dhabi", "asia", "hard", ("Dubai", "Sharjah")),
    ("Uzbekistan", "Tashkent", "asia", "medium", ()),
    # Africa.
    ("Angola", "Luanda", "africa", "medium", ()),
    ("Botswana", "Gaborone", "africa", "hard", ()),
    ("Burkina Faso", "Ouagadougou", "africa", "hard", ()),
    ("Cameroon", "Yaounde", "africa", "medium", ()),
    ("Cape Verde", "Praia", "africa", "hard", ()),
    ("the Central African Republic", "Bangui", "africa", "hard", ()),
    ("Chad", "N'Djamena", "africa", "hard", ()),
    ("the Comoros", "Moroni", "africa", "hard", ()),
    ("the Democratic Republic of the Congo", "Kinshasa", "africa", "medium", ()),
    ("the Republic of the Congo", "Brazzaville", "africa", "hard", ()),
    ("Eritrea", "Asmara", "africa", "hard", ()),
    ("Ethiopia", "Addis Ababa", "africa", "medium", ()),
    ("Gabon", "Libreville", "africa", "hard", ()),
    ("the Gambia", "Banjul", "africa", "hard", ()),
    ("Ghana", "Accra", "africa", "medium", ()),
    ("Guinea", "Conakry", "africa", "hard", ()),
    ("Lesotho", "Maseru", "africa", "hard", ()),
    ("Liberia", "Monrovia", "africa", "medium", ()),
    ("Madagascar", "Antananarivo", "africa", "medium", ()),
    ("Malawi", "Lilongwe", "africa", "hard", ()),
    ("Mali", "Bamako", "africa", "medium", ()),
    ("Mauritania", "Nouakchott", "africa", "hard", ()),
    ("Mauritius", "Port Louis", "africa", "hard", ()),
    ("Mozambique", "Maputo", "africa", "medium", ()),
    ("Namibia", "Windhoek", "africa", "medium", ()),
    ("Niger", "Niamey", "africa", "medium", ()),
    ("Rwanda", "Kigali", "africa", "medium", ()),
    ("Senegal", "Dakar", "africa", "medium", ()),
    ("the Seychelles", "Victoria", "africa", "hard", ()),
    ("Sierra Leone", "Freetown", "africa", "medium", ()),
    ("Somalia", "Mogadishu", "africa", "medium", ()),
    ("South Sudan", "Juba", "africa", "hard", ()),
    ("Togo", "Lome", "africa", "hard", ()),
    ("Uganda", "Kampala", "africa", "medium", ()),
    ("Zambia", "Lusaka", "africa", "medium", ()),
    ("Zimbabwe", "Harare", "africa", "medium", ()),
    # The Americas.
    ("Antigua and Barbuda", "Saint John's", "americas", "hard", ()),
    ("the Bahamas", "Nassau", "americas", "medium", ()),
    ("Barbados", "Bridgetown", "americas", "hard", ()),
    ("Belize", "Belmopan", "americas", "hard", ("Belize City", "San Ignacio")),
    ("Costa Rica", "San Jose", "americas", "medium", ()),
    ("Dominica", "Roseau", "americas", "hard", ()),
    ("the Dominican Republic", "Santo Domingo", "americas", "medium", ()),
    ("Ecuador", "Quito", "americas", "medium", ()),
    ("Grenada", "Saint George's", "americas", "hard", ()),
    ("Guyana", "Georgetown", "americas", "hard", ()),
    ("Haiti", "Port-au-Prince", "americas", "medium", ()),
    ("Honduras", "Tegucigalpa", "americas", "hard", ()),
    ("Jamaica", "Kingston", "americas", "medium", ()),
    ("Nicaragua", "Managua", "americas", "medium", ()),
    ("Paraguay", "Asuncion", "americas", "medium", ()),
    ("Saint Kitts and Nevis", "Basseterre", "americas", "hard", ()),
    ("Saint Lucia", "Castries", "americas", "hard", ()),
    ("Saint Vincent and the Grenadines", "Kingstown", "americas", "hard", ()),
    ("Suriname", "Paramaribo", "americas", "hard", ()),
    ("Trinidad and Tobago", "Port of Spain", "americas", "hard", ()),
    ("the United States", "Washington, D.C.", "americas", "hard", ("New York", "Los Angeles", "Chicago")),
    ("Uruguay", "Montevideo", "americas", "medium", ()),
    ("Venezuela", "Caracas", "americas", "medium", ()),
    # Oceania.
    ("Fiji", "Suva", "oceania", "hard", ()),
    ("Papua New Guinea", "Port Moresby", "oceania", "hard", ()),
    ("Samoa", "Apia", "oceania", "hard", ()),
    ("Tonga", "Nuku'alofa", "oceania", "hard", ()),
    ("Vanuatu", "Port Vila", "oceania", "hard", ()),
    ("the Solomon Islands", "Honiara", "oceania", "hard", ()),
    ("the Marshall Islands", "Majuro", "oceania", "hard", ()),
)

# Not here though curated items ask them: the Netherlands (Amsterdam / The Hague), Indonesia (a capital
# being moved) and Mexico (the capital repeats the name); the generator asks nothing new about them.

# (larger unit, smaller unit, how many smaller units make one larger, measure).
UNIT_PAIRS: tuple[tuple[str, str, int, str], ...] = (
    ("hour", "minute", 60, "time"),
    ("minute", "second", 60, "time"),
    ("day", "hour", 24, "time"),
    ("week", "day", 7, "time"),
    ("hour", "second", 3600, "time"),
    ("day", "minute", 1440, "time"),
    ("week", "hour", 168, "time"),
    ("metre", "centimetre", 100, "length"),
    ("centimetre", "millimetre", 10, "length"),
    ("kilometre", "metre", 1000, "length"),
    ("metre", "millimetre", 1000, "length"),
    ("kilogram", "gram", 1000, "mass"),
    ("tonne", "kilogram", 1000, "mass"),
    ("gram", "milligram", 1000, "mass"),
    ("litre", "millilitre", 1000, "volume"),
    ("litre", "centilitre", 100, "volume"),
)

# Factors a hurried answer confuses with the true one (60 minutes taken as 100, 1000 g as 100 ...).
CONFUSED_FACTORS: dict[int, tuple[int, ...]] = {
    60: (100, 24, 30, 10),
    24: (12, 60, 10, 20),
    7: (5, 10, 12, 6),
    3600: (360, 600, 6000, 1000),
    1440: (240, 1000, 600, 144),
    168: (120, 100, 140, 70),
    100: (10, 1000, 12, 60),
    10: (100, 1000, 12, 5),
    1000: (100, 10, 10000, 60),
}

# (element, symbol, difficulty): "hard" where the symbol comes from another language (Au, Fe, Na ...).
ELEMENTS: tuple[tuple[str, str, str], ...] = (
    ("hydrogen", "H", "easy"),
    ("helium", "He", "medium"),
    ("lithium", "Li", "medium"),
    ("carbon", "C", "easy"),
    ("nitrogen", "N", "medium"),
    ("oxygen", "O", "easy"),
    ("fluorine", "F", "medium"),
    ("neon", "Ne", "medium"),
    ("sodium", "Na", "hard"),
    ("magnesium", "Mg", "medium"),
    ("aluminium", "Al", "medium"),
    ("silicon", "Si", "medium"),
    ("phosphorus", "P", "medium"),
    ("sulfur", "S", "medium"),
    ("chlorine", "Cl", "medium"),
    ("argon", "Ar", "medium"),
    ("potassium", "K", "hard"),
    ("calcium", "Ca", "medium"),
    ("iron", "Fe", "hard"),
    ("nickel", "Ni", "medium"),
    ("copper", "Cu", "hard"),
    ("zinc", "Zn", "medium"),
    ("silver", "Ag", "hard"),
    ("tin", "Sn", "hard"),
    ("iodine", "I", "medium"),
    ("platinum", "Pt", "medium"),
    ("gold", "Au", "hard"),
    ("mercury", "Hg", "hard"),
    ("lead", "Pb", "hard"),
    ("uranium", "U", "medium"),
)

PLANETS = ("Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune")

# Animal classes: every animal here belongs to exactly one of them, as school biology teaches.
ANIMALS: dict[str, tuple[str, ...]] = {
    "mammal": ("whale", "dolphin", "bat", "elephant", "horse", "mouse", "tiger", "camel", "rabbit", "goat"),
    "bird": ("penguin", "ostrich", "eagle", "owl", "parrot", "swan", "pigeon", "duck"),
    "reptile": ("crocodile", "snake", "lizard", "tortoise", "iguana", "alligator"),
    "fish": ("shark", "salmon", "tuna", "trout", "cod", "goldfish"),
    "amphibian": ("frog", "toad", "newt", "salamander"),
    "insect": ("ant", "bee", "beetle", "butterfly", "grasshopper", "wasp"),
}

# "Which of these ...": (question head, domain, critical, objects that have the property, objects that
# do not). Every object is clearly on one side in everyday conditions.
CONTRASTS: tuple[tuple[str, str, bool, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "Which of these floats on water",
        "physical",
        True,
        (
            "a wooden log",
            "a cork",
            "a tennis ball",
            "an empty plastic bottle with its cap on",
            "a dry leaf",
            "an ice cube",
            "a rubber duck",
            "a feather",
            "a ping-pong ball",
            "a beach ball",
            "a dry twig",
            "a polystyrene cup",
        ),
        (
            "a brick",
            "an iron nail",
            "a stone",
            "a steel key",
            "a glass marble",
            "a lead fishing weight",
            "a gold ring",
            "a steel bolt",
            "a pebble",
            "an iron anchor",
            "a granite tile",
            "a steel hammer",
        ),
    ),
    (
        "Which of these sinks in water",
        "physical",
        True,
        (
            "a brick",
            "an iron nail",
            "a stone",
            "a steel key",
            "a glass marble",
            "a lead fishing weight",
            "a gold ring",
            "a steel bolt",
            "a pebble",
            "an iron anchor",
            "a granite tile",
            "a steel hammer",
        ),
        (
            "a wooden log",
            "a cork",
            "a tennis ball",
            "an empty plastic bottle with its cap on",
            "a dry leaf",
            "an ice cube",
            "a rubber duck",
            "a feather",
            "a ping-pong ball",
            "a beach ball",
            "a dry twig",
            "a polystyrene cup",
        ),
    ),
    (
        "Which of these conducts electricity",
        "science",
        True,
        (
            "a copper wire",
            "a steel spoon",
            "a sheet of aluminium foil",
            "an iron nail",
            "a brass key",
            "a silver ring",
            "a steel paperclip",
            "a copper pipe",
        ),
        (
            "a rubber glove",
            "a plastic ruler",
            "a wooden spoon",
            "a glass marble",
            "a rubber band",
            "a plastic straw",
            "a ceramic mug",
            "a dry cotton sock",
        ),
    ),
    (
        "Which of these is an electrical insulator",
        "science",
        True,
        (
            "a rubber glove",
            "a plastic ruler",
            "a wooden spoon",
            "a glass marble",
            "a rubber band",
            "a plastic straw",
            "a ceramic mug",
            "a dry cotton sock",
        ),
        (
            "a copper wire",
            "a steel spoon",
            "a sheet of aluminium foil",
            "an iron nail",
            "a brass key",
            "a silver ring",
            "a steel paperclip",
            "a copper pipe",
        ),
    ),
    (
        "Which of these catches fire most easily",
        "physical",
        True,
        (
            "a sheet of paper",
            "a pile of dry leaves",
            "a cotton towel",
            "a cardboard box",
            "a heap of dry straw",
            "an old newspaper",
            "a splash of petrol",
            "a paper napkin",
        ),
        (
            "a brick",
            "a glass jar",
            "a steel pan",
            "a stone",
            "a ceramic plate",
            "a bucket of sand",
            "a bucket of water",
            "a clay flowerpot",
        ),
    ),
    (
        "Which of these is attracted by a magnet",
        "science",
        False,
        (
            "an iron nail",
            "a steel paperclip",
            "an iron bolt",
            "a steel sewing needle",
            "an iron horseshoe",
            "a steel drawing pin",
        ),
        (
            "a plastic spoon",
            "a wooden block",
            "a glass marble",
            "a rubber band",
            "an aluminium can",
            "a gold ring",
            "a paper cup",
            "a cotton sock",
            "a copper wire",
        ),
    ),
    (
        "Which of these dissolves when stirred into water",
        "physical",
        False,
        ("sugar", "table salt", "a sugar cube", "instant coffee granules", "baking soda", "bath salts"),
        (
            "sand",
            "a pebble",
            "a plastic button",
            "cooking oil",
            "a glass bead",
            "a steel paperclip",
            "a wooden bead",
            "uncooked rice",
        ),
    ),
    (
        "Which of these can you see clearly through",
        "physical",
        False,
        ("a clear glass window", "a clear plastic bag", "cling film", "a clear glass bottle", "clean water"),
        (
            "a brick wall",
            "a wooden door",
            "a metal tray",
            "a sheet of cardboard",
            "a stone slab",
            "a closed book",
        ),
    ),
)

# The facts asked as they are: "domain difficulty [critical] | question", then "gold | three distractors".
# The generator gives every critical one and a share of the others to the eval pack, the rest to training.
_FACTS = """
science medium critical | Which gas from faulty heaters and car exhausts is poisonous and has no smell?
    carbon monoxide | oxygen | helium | neon
science medium critical | What is the normal body temperature of a healthy person in degrees Celsius?
    about 37 | about 30 | about 42 | about 25
science hard critical | At what temperature in degrees Fahrenheit does water freeze?
    32 | 0 | 100 | 10
science hard critical | At what temperature in degrees Fahrenheit does water boil at sea level?
    212 | 100 | 180 | 150
science medium critical | What should you cool a small burn with first?
    cool running water | butter | ice | toothpaste
science medium critical | Which kind of light from the Sun causes sunburn?
    ultraviolet light | infrared light | radio waves | microwaves
science hard critical | What should you never throw onto a pan of burning cooking oil?
    water | a damp tea towel | a fire blanket | the pan's lid
science medium critical | Why is it dangerous to touch a light switch with wet hands?
    water can conduct electricity | water melts the switch | water dims the light | water makes it magnetic
science medium | Which part of the body do the lungs give oxygen to?
    the blood | the bones | the hair | the nails
science medium | Which organ cleans the blood and makes urine?
    the kidneys | the lungs | the heart | the stomach
science hard | Which vitamin does the skin make in sunlight?
    vitamin D | vitamin C | vitamin A | vitamin B12
science hard | How many bones are there in the body of an adult human?
    206 | 106 | 306 | 186
science hard | Which gas makes up most of the air we breathe?
    nitrogen | oxygen | carbon dioxide | hydrogen
science easy | What is the natural satellite that orbits the Earth called?
    the Moon | the Sun | Mars | Venus
science easy | How long does the Earth take to travel once around the Sun?
    about one year | about one day | about one month | about one week
science medium | How long does the Earth take to spin once on its axis?
    about one day | about one year | about one month | about one hour
science medium | What do green plants need sunlight for?
    to make their food | to keep warm at night | to drink water | to grow roots downwards
science medium | What is it called when water vapour cools and turns into liquid water?
    condensation | evaporation | melting | freezing
science medium | What is it called when liquid water turns into water vapour?
    evaporation | condensation | freezing | melting
science easy | What is it called when a solid turns into a liquid?
    melting | freezing | condensation | evaporation
science easy | What is it called when a liquid turns into a solid?
    freezing | melting | evaporation | condensation
science easy | How many legs does an insect have?
    six | eight | four | ten
science medium | Which travels faster through the air?
    light | sound | a thrown ball | a flying bird
science hard | About how long does sunlight take to reach the Earth?
    about eight minutes | about eight seconds | about eight hours | about eight days
physical easy critical | What happens if you touch a hot stove?
    You can burn your hand | Your hand gets wet | Your hand gets colder | Nothing at all
physical medium critical | What happens to a car's stopping distance on a wet road?
    It gets longer | It gets shorter | It stays the same | It becomes zero
physical medium critical | What happens to a candle flame if you cover it with a glass jar?
    It goes out | It grows bigger | It turns blue forever | It freezes
physical easy critical | What happens to a raw egg dropped onto a hard floor?
    It breaks | It bounces | It floats | It hardens
physical medium critical | What happens to the handle of a metal pan left on a hot stove for a long time?
    It gets hot | It gets cold | It turns to liquid | It gets lighter
physical easy critical | What happens to a glass of water left in a freezer overnight?
    It freezes | It boils | It turns to steam | It disappears
physical hard critical | What happens to ice on a pavement when salt is spread on it?
    It melts | It gets thicker | It turns to glass | It catches fire
physical medium critical | What happens to milk left out of the fridge on a warm day for several days?
    It goes sour | It turns into water | It becomes fresher | It turns into butter by itself
physical easy | What happens to chocolate left in the hot sun?
    It melts | It freezes | It grows | It turns to stone
physical easy | What happens to a puddle on a hot sunny day?
    It dries up | It freezes | It gets deeper | It turns to ice
physical easy | What happens to a ball thrown straight up into the air?
    It comes back down | It keeps going up forever | It stops in mid-air | It flies sideways
physical easy | What happens to a sheet of paper held in a flame?
    It burns | It melts | It freezes | It gets wet
physical medium | What happens to an iron nail left outside in the rain for months?
    It rusts | It melts | It grows | It turns to wood
physical easy | What happens to a balloon filled with helium when you let go of it?
    It rises | It falls to the ground | It freezes | It fills with water
physical easy | What happens to a rubber ball dropped onto a hard floor?
    It bounces | It shatters | It melts | It sticks to the floor
physical easy | What happens to butter put in a hot frying pan?
    It melts | It freezes | It turns to ice | It gets harder
physical easy | What happens to wet clothes hung outside on a sunny, windy day?
    They dry | They get wetter | They freeze | They shrink to nothing
physical easy | What happens to a snowman on a warm spring day?
    It melts | It grows | It freezes harder | It turns to stone
physical medium | Where does a shadow fall when a lamp is in front of you?
    behind you | in front of you | above you | nowhere
physical medium | What happens to bread left in a damp bag for two weeks?
    It goes mouldy | It turns into flour | It becomes fresher | It turns into cake
physical easy | Which way does water flow on its own?
    downhill | uphill | only sideways | it never flows
physical medium | What happens to a stretched rubber band when you let go of one end?
    It snaps back | It stays stretched | It melts | It gets longer
"""


def _facts(text: str) -> tuple[tuple[str, str, tuple[str, str, str], str, str, bool], ...]:
    lines = [line.strip() for line in text.strip().splitlines()]
    facts = []
    for head, answers in zip(lines[::2], lines[1::2], strict=True):
        tags, question = head.split(" | ")
        gold, *wrong = answers.split(" | ")
        domain, level, *critical = tags.split()
        facts.append(
            (question, gold, (wrong[0], wrong[1], wrong[2]), domain, level, critical == ["critical"])
        )
    return tuple(facts)


# (question, gold, three distractors, domain, difficulty, critical)
FACTS = _facts(_FACTS)
