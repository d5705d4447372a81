"""What the benchmark readers and scorers share: LLaVA-1.5's prompt suffixes, the standard VQA answer
normalisation and accuracy, the option-letter parser, and small checks (files, lengths).

`normalize_answer` follows the official VQA evaluation (vqaEval.py of the VQA API, Antol et al. 2015 /
Goyal et al. 2017) as run through EvalAI's answer processor, which is what LLaVA-1.5 applies to its
VQAv2 predictions and what the TextVQA (m4c) evaluator applies to predictions and references alike:

1. lowercase; delete "," and "?"; split the possessive: "'s" -> " 's";
2. newlines and tabs -> spaces; strip;
3. punctuation ; / [ ] " { } ( ) = + \\ _ - > < @ ` , ? ! is deleted when it touches a space
   somewhere in the text (or the text holds a digit,digit comma), otherwise replaced by a space
   ("t-shirt" -> "t shirt"); a period is deleted unless a digit follows ("2.5" stays);
4. number words none/zero..ten -> digits; articles a/an/the dropped; apostrophe-less
   contractions restored ("dont" -> "don't").

`vqa_accuracy` is the VQA metric: min(#matching humans / 3, 1) averaged over the 10 leave-one-out
subsets of the 10 reference answers (so 1 match -> 0.3, 2 -> 0.6, 3 -> 0.9, 4+ -> 1).
"""
from __future__ import annotations

import errno
import re
from pathlib import Path

PUNCTUATION = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<",
               "@", "`", ",", "?", "!"]
NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = {"a", "an", "the"}
# The instruction suffixes of LLaVA-1.5's evaluation prompts.
SHORT_ANSWER = "\nAnswer the question using a single word or phrase."
LETTER_ANSWER = "\nAnswer with the option's letter from the given choices directly."

_PERIOD = re.compile(r"\.(?!\d)")
_DIGIT_COMMA = re.compile(r"\d,\d")

# The official table, as "written form: apostrophe-less spellings" (each spelling maps to the
# written form). "somebody'd" -> "somebodyd" is reversed in the official table too; kept as is.
_CONTRACTIONS = """
ain't: aint | aren't: arent | can't: cant | could've: couldve | couldn't: couldnt |
couldn't've: couldn'tve couldnt've | didn't: didnt | doesn't: doesnt | don't: dont | hadn't: hadnt |
hadn't've: hadnt've hadn'tve | hasn't: hasnt | haven't: havent | he'd: hed | he'd've: hed've he'dve |
he's: hes | how'd: howd | how'll: howll | how's: hows | I'd've: Id've I'dve | I'm: Im | I've: Ive |
isn't: isnt | it'd: itd | it'd've: itd've it'dve | it'll: itll | let's: let's | ma'am: maam |
mightn't: mightnt | mightn't've: mightnt've mightn'tve | might've: mightve | mustn't: mustnt |
must've: mustve | needn't: neednt | not've: notve | o'clock: oclock | oughtn't: oughtnt |
'ow's'at: ow's'at 'ows'at 'ow'sat | shan't: shant | she'd've: shed've she'dve | she's: she's |
should've: shouldve | shouldn't: shouldnt | shouldn't've: shouldnt've shouldn'tve |
somebodyd: somebody'd | somebody'd've: somebodyd've somebody'dve | somebody'll: somebodyll |
somebody's: somebodys | someone'd: someoned | someone'd've: someoned've someone'dve |
someone'll: someonell | someone's: someones | something'd: somethingd |
something'd've: somethingd've something'dve | something'll: somethingll | that's: thats |
there'd: thered | there'd've: thered've there'dve | there're: therere | there's: theres |
they'd: theyd | they'd've: theyd've they'dve | they'll: theyll | they're: theyre | they've: theyve |
'twas: twas | wasn't: wasnt | we'd've: wed've we'dve | we've: weve | weren't: werent |
what'll: whatll | what're: whatre | what's: whats | what've: whatve | when's: whens |
where'd: whered | where's: wheres | where've: whereve | who'd: whod | who'd've: whod've who'dve |
who'll: wholl | who's: whos | who've: whove | why'll: whyll | why're: whyre | why's: whys |
won't: wont | would've: wouldve | wouldn't: wouldnt | wouldn't've: wouldnt've wouldn'tve |
y'all: yall | y'all'll: yall'll y'allll | y'all'd've: yall'd've y'alld've y'all'dve | you'd: youd |
you'd've: youd've you'dve | you'll: youll | you're: youre | you've: youve
"""
CONTRACTIONS = {spelling: written
                for entry in _CONTRACTIONS.split("|")
                for written, spellings in [entry.strip().split(": ")]
                for spelling in spellings.split()}


def _punctuation(text: str) -> str:
    delete = _DIGIT_COMMA.search(text) is not None
    out = text
    for p in PUNCTUATION:
        gone = delete or (p + " ") in text or (" " + p) in text
        out = out.replace(p, "" if gone else " ")
    return _PERIOD.sub("", out)


def _digits_articles_contractions(text: str) -> str:
    words = [NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    return " ".join(CONTRACTIONS.get(w, w) for w in words if w not in ARTICLES)


def normalize_answer(text: str) -> str:
    """The standard VQA answer normalisation (see the module docstring)."""
    text = text.lower().replace(",", "").replace("?", "").replace("'s", " 's")
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return _digits_articles_contractions(_punctuation(text))


def vqa_accuracy(prediction: str, answers: list[str]) -> float:
    """VQA accuracy of one prediction against the human answers (normally 10), both normalised:
    the mean over leave-one-out subsets of min(matches in the subset / 3, 1)."""
    pred = normalize_answer(prediction)
    hits = [normalize_answer(a) == pred for a in answers]
    total = sum(hits)
    return sum(min(1.0, (total - h) / 3) for h in hits) / len(hits)


_LETTER = r"(?<![A-Za-z])([A-Z])(?![A-Za-z])"


def parse_letter(text: str, n_options: int) -> str | None:
    """The option letter of a multiple-choice answer: the first standalone capital letter among the
    first `n_options` letters (so "B", "B.", "(B) cat", "The answer is B." all give "B");
    None when there is none."""
    valid = "ABCDEFGHIJ"[:n_options]
    for m in re.finditer(_LETTER, text.strip()):
        if m.group(1) in valid:
            return m.group(1)
    return None


def paired(samples, predictions: list[str]) -> list:
    """`samples` (a list or a Split) checked against the predictions; returns the sample list."""
    samples = getattr(samples, "samples", samples)
    if len(samples) != len(predictions):
        raise ValueError(f"{len(samples)} samples but {len(predictions)} predictions")
    return list(samples)


def require(path: Path | str, what: str) -> Path:
    """`path` if it exists, else FileNotFoundError naming exactly that path."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, f"{what} not found", str(path))
    return path


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0
