"""The words an answer is read by (``analysis.answers``): cleaning, ConText's triggers, and anatomy with a property.

After ConText (Harkema et al., J Biomed Inform 2009) and NegEx (Chapman et al. 2001): negation and hedge
triggers, pseudo-triggers and termination terms, matched on whole words; the regions of the chest a
property word ("normal", "enlarged", "clear") can describe, and which findings a normal region rules out.
"""

from __future__ import annotations

import re

UNCERTAIN = "uncertain"
PRESENT, ABSENT, POSSIBLE = "present", "absent", "possible"
LEFT, RIGHT = "left", "right"

Span = tuple[int, int]


# ---- cleaning (same length: every span indexes the raw answer) ------------------------------------
CONTROL = re.compile(r"</?(?:end_of_turn|start_of_turn|eos|bos|pad|unk|end_of_image|start_of_image)>|"
                     r"<\|[^|>]*\|>", re.IGNORECASE)
PREFIX = re.compile(r"^\s*(?:model|assistant)\s*\n|\b(?:final\s+)?answer\s*:|\bthe\s+answer\s+is\b",
                    re.IGNORECASE)
MARKUP = re.compile(r"[*_`#]")


def _blank(match: re.Match[str]) -> str:
    return " " * len(match.group())


def clean_answer(answer: str) -> str:
    text = CONTROL.sub(_blank, answer or "")
    text = MARKUP.sub(_blank, text).replace("\u2019", "'")
    previous = None
    while previous != text:  # "model\nAnswer: ..." needs two passes
        previous = text
        text = PREFIX.sub(_blank, text)
    return text


# ---- triggers --------------------------------------------------------------------------------------
def word_pattern(*alternatives: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w'])(?:" + "|".join(alternatives) + r")(?![\w'])", re.IGNORECASE)


# hedges: ConText's "possible existence" (medspaCy's English rules) plus the radiology register
HEDGE = word_pattern(
    r"(?:can ?not|can't|could not|couldn't|unable to|not able to|not possible to|difficult to|hard to)\s+(?:be\s+)?(?:"
    r"\w+ly\s+)?(?:exclude[sd]?|rule[sd]? out|ruled out|determine[sd]?|assess(?:ed)?"
    r"|tell|say|confirm(?:ed)?|evaluate[sd]?|characterize[sd]?)",
    r"(?:difficult|hard) to (?:see|visualize|appreciate|detect)",
    r"not (?:be )?(?:excluded|ruled out)", r"(?:not|cannot be|can't be) (?:sure|certain)", r"unsure",
    r"i (?:do not|don't) know", r"possible|possibly|probable|probably|likely|unlikely|may|might|perhaps",
    r"questionable|equivocal|indeterminate|unclear|uncertain|borderline|suspected|suspect|suspicious for",
    r"concerning for|worrisome for|suggestive of|suggests?|suggesting|could (?:represent|be|reflect|indicate)",
    r"(?:upper|high) limits? of normal|(?:top|high|upper)[- ]normal|versus|vs\.?|limited evaluation"
    r"|not well (?:evaluated|seen)",
    r"questioned|in question",
)
# the hedges that lean towards the finding (ConText's "probable existence"): "hedged = lean" reads them as
# yes; the rest ("cannot be excluded", "unclear", "equivocal", "borderline") leave the question open
# hedge words that can be what a question asks about ("Is there an indeterminate nodule?")
ASKED_HEDGE = word_pattern(r"unclear|uncertain|indeterminate|questionable|equivocal|suspicious|suspected|borderline")
LEANING = word_pattern(r"possible|possibly|probable|probably|likely|unlikely|may|might|perhaps|suspected|suspect",
                  r"suspicious for|concerning for|worrisome for|suggestive of|suggests?|suggesting",
                  r"could (?:represent|be|reflect|indicate)")
# ConText's direction: these hedge only what follows them ("a nodule, concerning for malignancy": the
# nodule is stated), these only what precedes them ("a small effusion cannot be excluded"); the rest
# ("likely", "may", "possible") hedge their whole scope
HEDGE_FORWARD = word_pattern(r"suspicious for|concerning for|worrisome for|suggestive of|suggests?|suggesting",
                        r"could (?:represent|be|reflect|indicate)")
HEDGE_BACKWARD = word_pattern(r"(?:can ?not|can't|not) (?:be )?(?:\w+ly )?"
                         r"(?:excluded|ruled out)", r"questioned|in question|suspected")
NOT = r"not|isn't|aren't|wasn't|weren't|don't|doesn't|didn't|hasn't|haven't|cannot|can't|couldn't|won't"
NEG_FORWARD = word_pattern(
    r"no", NOT, r"without", r"absence of", r"negative for", r"free of", r"lack of", r"clear of",
    r"neither", r"nor", r"never", r"resolution of", r"none of", r"rules? out", r"argues? against",
)
NEG_BACKWARD = word_pattern(
    NOT, r"absent", r"none", r"resolved", r"ruled out", r"excluded", r"negative", r"no longer", r"removed",
    r"withdrawn",
)
# pseudo-triggers: negation words that negate no finding ("no change in the effusion": it is there)
PSEUDO = word_pattern(
    r"no (?:significant |interval |substantial |appreciable )?(?:change|increase|decrease|worsening|progression)",
    r"not only", r"without (?:significant |interval )?change", r"unchanged",
)

# termination: ends a trigger's scope inside a sentence (ConText's "terminate" rules)
TERMINATE = re.compile(
    r"\b(?:but|however|although|though|whereas|except|apart from|aside from|which|yet|while|with the exception of"
    r")\b"
    r"|(?:,|\band\b)\s*(?=(?:and\s+)?(?:there|the|a|an|small|moderate|large|mild|trace|tiny|minimal|severe|no"
    r"|yes|left|right|bilateral|it|this|possible|possibly|probable|likely|probably|suggest\w*|consistent|compatible|may"
    r"|might|could|without|with|likely|i|however|heart|lungs?)\b)",
    re.IGNORECASE,
)
SENTENCE = re.compile(r"[.!?;](?=\s|$)|\n+")
# a relative clause that says what the previous clause's sign means ("..., which is a sign of effusion")
RELATIVE = re.compile(r"\bwhich\b", re.IGNORECASE)
# a generic or hypothetical statement about a finding, not about this film (ConText's "hypothetical")
GENERIC = re.compile(
    r"\b(?:would|usually|typically|generally|commonly|often|looks? like|appears? as|(?:can|may) be (?:missed|difficult"
    r"|hard)|(?:can|may|might) not be (?:visible|seen|detected|apparent)|(?:is|are) (?:a |an |the )?"
    r"(?:\w+ ){0,2}(?:signs?|features?|hallmarks?|causes?|indicators?|findings?) (?:of|in))\b", re.IGNORECASE)
EXISTENTIAL = re.compile(r"\b(?:there (?:is|are|appears?|seems?)|i (?:can )?see|(?:is|are) (?:seen|present|noted"
                         r"|visible|identified))\b", re.IGNORECASE)

SIDE = word_pattern(r"left(?:-sided)?|right(?:-sided)?|bilateral(?:ly)?|both|bibasilar|bibasal|bibasally"
               r"|either side|both sides|bilateral lungs")
LOBE = re.compile(r"\b(upper|middle|mid|lower)\s+(?:lobes?|lung|zones?)\b|\b(lingula\w*)\b"
                  r"|\b(bases?|basilar|basal|bibasilar|bibasal|apex|apices|apical)\b", re.IGNORECASE)
ASKED_LOBE = re.compile(r"\b(upper|middle|lower)\s+lobes?\b|\b(lingula\w*)\b", re.IGNORECASE)

# verdict words: standing alone in their clause; the strong ones also at the start of a clause
STRONG_YES = {"yes", "yeah", "yep", "yup", "affirmative"}
STRONG_NO = {"nope", "nah"}
ALONE_YES = STRONG_YES | {"positive", "correct", "true", "present"}
ALONE_NO = STRONG_NO | {"no", "negative", "false", "absent", "none", "incorrect"}

# elliptic answers (no finding named): bare existence words
BARE_NO = word_pattern(r"no", NOT, r"none", r"absent", r"negative", r"without")
BARE_YES = word_pattern(r"present", r"seen", r"visible", r"identified", r"noted", r"positive", r"there is one",
                   r"small|moderate|large|trace|tiny|mild|severe|massive")

# ---- anatomy with a property ------------------------------------------------------------------------
REGIONS: dict[str, tuple[str, ...]] = {
    r"cardiomediastinal (?:silhouette|contours?|shadow)": ("heart", "mediastinum"),
    r"heart(?: size)?|cardiac(?: silhouette| size| shadow| contours?)?|cardiothoracic ratio": ("heart",),
    r"mediastinum|mediastinal(?: contours?| silhouette| width)?": ("mediastinum",),
    r"(?:pulmonary )?vascula(?:ture|rity)|pulmonary vessels": ("vasculature",),
    r"lungs?|lung fields?|lung parenchyma|lung volumes": ("lungs",),
    r"costophrenic (?:angles?|sulc(?:us|i)|recess(?:es)?)|cp angles?": ("costophrenic",),
    r"pleural (?:spaces?|surfaces?)|pleura": ("pleura",),
    r"trachea": ("trachea",),
    r"(?:upper|middle|lower) lobes?|lobes?|lingula": ("lobe",),
    r"(?:chest )?(?:x-ray|xray|radiograph|film|study|examination|exam|cxr)|chest": ("study",),
}
REGION_OF = list(REGIONS.values())
REGION = re.compile(r"\b(?:" + "|".join(f"({p})" for p in REGIONS) + r")\b", re.IGNORECASE)

# a property word, the regions it can describe, and whether it says "normal"
NORMAL_WORDS = re.compile(
    r"\b(?:normal(?: in (?:size|width|caliber|appearance))?|within normal limits|unremarkable|clear"
    r"|sharp|preserved|midline|well[- ]defined)\b", re.IGNORECASE)
NORMAL_FOR: dict[str, set[str]] = {
    "normal": {"heart", "mediastinum", "vasculature", "lungs", "costophrenic", "pleura", "trachea", "study"},
    "within normal limits": {"heart", "mediastinum", "vasculature", "lungs", "trachea", "study"},
    "unremarkable": {"heart", "mediastinum", "vasculature", "lungs", "pleura", "study"},
    "clear": {"lungs", "costophrenic", "pleura"},
    "sharp": {"costophrenic"},
    "preserved": {"costophrenic"},
    "midline": {"trachea"},
    "well-defined": {"costophrenic"},
}
ABNORMAL_WORDS = re.compile(
    r"\b(?:enlarged|enlargement|increased in size|widened|widening|wide|deviated|shifted|congested"
    r"|engorged|indistinct|blunted|blunting|collapsed|collapse|not clear|abnormal|thickened|thickening|solid)\b",
    re.IGNORECASE)
ABNORMAL_FOR: dict[str, dict[str, str]] = {  # region -> property word -> the finding it states
    "heart": {"enlarged": "cardiomegaly", "enlargement": "cardiomegaly", "increased in size": "cardiomegaly"},
    "mediastinum": {"widened": "mediastinal widening", "widening": "mediastinal widening",
                    "wide": "mediastinal widening", "enlarged": "mediastinal widening"},
    "trachea": {"deviated": "tracheal deviation", "shifted": "tracheal deviation"},
    "vasculature": {"congested": "edema", "engorged": "edema", "indistinct": "edema"},
    "costophrenic": {"blunted": "blunting", "blunting": "blunting"},
    "lobe": {"collapsed": "atelectasis", "collapse": "atelectasis"},
    "pleura": {"thickened": "pleural thickening", "thickening": "pleural thickening"},
    "lungs": {"solid": "consolidation"},
}

# which findings a normal region rules out (a radiologist's reading of "the lungs are clear" etc.)
PARENCHYMA = {"consolidation", "opacity", "pneumonia", "edema", "atelectasis", "nodule", "mass", "infiltration",
               "lesion", "fibrosis", "tuberculosis", "bronchiectasis", "metastasis", "septal lines"}
ACUTE = {"effusion", "pneumothorax", "consolidation", "pneumonia", "edema", "opacity", "infiltration",
          "atelectasis", "mediastinal widening"}
REGION_FINDINGS: dict[str, set[str]] = {
    "heart": {"cardiomegaly"},
    "mediastinum": {"mediastinal widening"},
    "vasculature": {"edema", "vascular redistribution", "pulmonary hypertension"},
    "lungs": PARENCHYMA,
    "costophrenic": {"effusion", "blunting"},
    "pleura": {"effusion", "pneumothorax", "pleural thickening"},
    "trachea": {"tracheal deviation"},
}
REGION_LABEL = {"heart": "heart size", "mediastinum": "mediastinal width", "vasculature": "pulmonary vasculature",
                 "lungs": "lungs", "costophrenic": "costophrenic angles", "pleura": "pleural spaces",
                 "trachea": "trachea", "study": "whole study"}
NORMAL_STUDY = re.compile(
    r"\bno (?:(acute) )?(?:cardiopulmonary |intrathoracic |radiographic )?(?:abnormalit(?:y|ies)|process|disease"
    r"|findings?)\b|\bno (?:significant |acute )?abnormalit(?:y|ies)\b", re.IGNORECASE)

# concepts that name where, not what
ANATOMY = {"lung", "lobe", "heart", "rib", "diaphragm", "mediastinum", "costophrenic", "hilum",
            "trachea", "spine", "clavicle", "aorta", "pleura"}
# a question about the broader concept is answered "yes" by the narrower one ("opacity" by "consolidation")
NARROWER: dict[str, set[str]] = {
    "opacity": {"consolidation", "infiltration", "atelectasis", "nodule", "mass", "pneumonia", "edema", "lesion"},
    "lesion": {"nodule", "mass"},
    "device": {"endotracheal tube", "enteric tube", "central line", "chest tube", "pacemaker", "sternotomy"},
    "blunting": {"effusion"},
}
