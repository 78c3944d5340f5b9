"""Every word list of the request language, once: the object vocabulary (digit and garment words, and the
global class names that scenes, the detector and the verifier share), counts, relations, positions, layouts,
sizes, style words (with the edit each asks for), task words and the filler words a request may carry without
meaning anything.

The grammar (:mod:`artdirector.prompts.grammar`) builds its terminals from these lists; the edit grammar
(:mod:`artdirector.prompts.edits`) adds its verbs and comparatives. Plain data: nothing here imports a parser.
"""

from __future__ import annotations

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# FashionMNIST's ten classes (label order of torchvision's FashionMNIST) and their common synonyms
FASHION = {
    0: ("t-shirt", "tshirt", "tee", "top"),
    1: ("trousers", "trouser", "pants", "jeans"),
    2: ("pullover", "sweater", "jumper"),
    3: ("dress",),
    4: ("coat", "jacket"),
    5: ("sandal",),
    6: ("shirt",),
    7: ("sneaker", "trainer"),
    8: ("bag", "handbag", "purse"),
    9: ("ankle boot", "boot"),
}
# each FashionMNIST class's canonical name, in label order
FASHION_NAMES = tuple(names[0] for names in FASHION.values())
# a scene's object classes by global id: 0-9 the MNIST digits, 10-19 FashionMNIST's classes
CLASS_NAMES = tuple(str(i) for i in range(10)) + FASHION_NAMES
NUM_CLASSES = len(CLASS_NAMES)
# what the zoo's class-conditional creators draw, by the dataset each was trained on (a refusal lists these)
DATASETS = {
    "mnist": "MNIST digits 0-9 ('7', 'seven', 'sevens')",
    "fashion_mnist": f"FashionMNIST items ({', '.join(FASHION_NAMES)})",
}
COUNT_WORDS = {"a pair of": 2, "a couple of": 2} | {w: i for i, w in enumerate(DIGIT_WORDS) if i}
RELATIONS = {
    "left of": "left of",
    "to the left of": "left of",
    "on the left of": "left of",
    "right of": "right of",
    "to the right of": "right of",
    "on the right of": "right of",
    "above": "above",
    "over": "above",
    "on top of": "above",
    "atop": "above",
    "below": "below",
    "under": "below",
    "underneath": "below",
    "beneath": "below",
    "next to": "next to",
    "beside": "next to",
    "alongside": "next to",
}
# where one of several objects sits ("a 5 on the left and a 0 on the right"): the axis and the rank along it;
# objects said without a position rank in the middle
POSITIONS = {
    "on the left": ("x", 0),
    "at the left": ("x", 0),
    "to the left": ("x", 0),
    "on the right": ("x", 2),
    "at the right": ("x", 2),
    "to the right": ("x", 2),
    "on top": ("y", 0),
    "at the top": ("y", 0),
    "on the top": ("y", 0),
    "at the bottom": ("y", 2),
    "on the bottom": ("y", 2),
    "in the middle": (None, 1),
    "in the centre": (None, 1),
    "in the center": (None, 1),
}
# a list read in an order ("the digits 4, 5 and 6 from left to right"): its line and the relation between
# neighbours
ORDERS = {
    "left to right": ("row", "left of"),
    "right to left": ("row", "right of"),
    "top to bottom": ("column", "above"),
    "bottom to top": ("column", "below"),
}
LINES = {"row": "row", "line": "row", "column": "column"}
SIZES = {
    "small": "small",
    "tiny": "small",
    "little": "small",
    "large": "large",
    "big": "large",
    "huge": "large",
}
# style words, each attached to the object it precedes ("a thick 4 left of a thin 6"): the attribute of
# artdirector.editing.attributes it moves and the amount, as artdirector.editing.targets.StyleTarget.parse reads
# them (the grammar's STYLE terminals are these words; the style editor acts on their targets)
STYLE_TARGETS: dict[str, tuple[str, str]] = {
    "thick": ("thickness", "+50%"),
    "bold": ("thickness", "+50%"),
    "heavy": ("thickness", "+50%"),
    "thin": ("thickness", "-33%"),
    "slanted": ("slant", "+15"),
    "slanting": ("slant", "+15"),
    "italic": ("slant", "+15"),
    "upright": ("slant", "=0"),
    "straight": ("slant", "=0"),
    "bright": ("brightness", "+15%"),
    "dim": ("brightness", "-30%"),
}
STYLES = {w: w for w in STYLE_TARGETS}  # a prompt's style word -> the word its object records
# "small" and "large" mean two things, kept apart: in a request they are SIZES, the object's cell on a scene's
# canvas (which makes the request a scene), never style words; as an edit of an image already drawn (the style
# editor's and its bench's words) they are the digit's size within its own frame, these targets
FRAME_SIZE_TARGETS: dict[str, tuple[str, str]] = {
    "small": ("size", "-25%"),
    "large": ("size", "+25%"),
}
# image-to-image: "make this 3 look like an 8", "turn this 3 into an 8"
TRANSLATE = ("look like", "looks like", "into")
SHARP = ("sharp", "crisp", "detailed", "high-resolution", "high resolution", "hi-res", "hires")
# task words, anywhere in a request; when several are said, refine wins over create over variations (the
# seed's rules: "refine" -> refine, "new" -> create, otherwise variations)
TASKS = {
    "refine": "refine",
    "refined": "refine",
    "improve": "refine",
    "improved": "refine",
    "enhance": "refine",
    "enhanced": "refine",
    "fix": "refine",
    "polish": "refine",
    "better": "refine",
    "generate": "create",
    "create": "create",
    "make": "create",
    "draw": "create",
    "paint": "create",
    "show": "create",
    "give": "create",
    "sketch": "create",
    "put": "create",
    "place": "create",
    "new": "create",
    "fresh": "create",
    "variation": "variations",
    "variations": "variations",
    "vary": "variations",
    "varied": "variations",
    "similar": "variations",
    "alike": "variations",
    "like this": "variations",
    "like these": "variations",
    "like that": "variations",
    "like those": "variations",
    "like it": "variations",
    "like them": "variations",
    "more of": "variations",
    "riff on": "variations",
    "turn": "variations",
}
TASK_ORDER = ("refine", "create", "variations")
# words a request may carry that say nothing the agents act on; a word in none of these lists is an error
FILLER = (
    "please", "me", "us", "some", "art", "image", "images", "picture", "pictures", "sample", "samples",
    "of", "with", "for", "on", "this", "these", "that", "those", "it", "them", "digit", "digits", "number",
    "numbers", "item", "items", "more", "again", "another", "last", "previous", "same", "batch", "theme",
    "something", "i", "i'd", "i'd like", "i would like", "i want", "can you", "could you", "now", "just",
    "also", "here", "my", "our", "a", "an", "the",
)  # fmt: skip
# words between an article and its object that keep the object counted ("the digit 7" is one 7)
KIND_WORDS = {"digit", "digits", "number", "numbers", "item", "items"}
ARTICLES = {"a", "an", "the"}


def plural(word: str) -> list[str]:
    """The word and its plural."""
    if word.endswith(("s", "x")):
        return [word, word + "es"]
    return [word, word + "s"]


def _object_words() -> dict[str, tuple[str, int, str]]:
    """Every object word -> (dataset, label, canonical name)."""
    out: dict[str, tuple[str, int, str]] = {}
    for i, w in enumerate(DIGIT_WORDS):
        for form in plural(w):
            out[form] = ("mnist", i, str(i))
    for i in range(10):
        for form in (str(i), f"{i}s", f"{i}'s"):
            out[form] = ("mnist", i, str(i))
    for label, names in FASHION.items():
        for name in names:
            for form in plural(name):
                out[form] = ("fashion_mnist", label, names[0])
    return out


OBJECTS = _object_words()
