"""Chest-radiograph finding and anatomy terms, and where they occur in a text.

``match_terms`` finds lexicon terms in a question or an answer (case-insensitive, on word boundaries,
longest match first, no overlaps); ``tokens_for_matches`` carries those character spans over to the
tokens of a tokenizer's offset mapping, so a view can pick "the tokens that name a finding".

A term's words may be separated by any run of spaces or hyphens in the text ("costo-phrenic" is not
a term, but "pleural-effusion" and "pleural  effusion" both match "pleural effusion"). A hyphen is
a word boundary: "left-sided effusion" matches "effusion", "rib-cage" matches "rib", while "ribbon"
does not match "rib".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["TermMatch", "CONCEPTS", "DEFAULT_TERMS", "concept_of", "match_terms", "tokens_for_matches"]

# concept -> surface forms (plurals, inflections, spelling variants, multi-word phrasings). The findings are
# the CheXpert and MIMIC-CXR label sets' (Irvin et al., AAAI 2019; Johnson et al., Sci Data 2019) with the
# PadChest labels a chest X-ray question names (aortic elongation, kyphosis, pneumoperitoneum, vascular
# redistribution; Bustos et al., Med Image Anal 2020); the forms add Fleischner glossary synonyms (Hansell
# et al., Radiology 2008), the abbreviations reports use (PTX, PAH, ETT) and the lay wording of a question
# ("fluid around the lungs", "air in the chest", "an enlarged heart").
CONCEPTS: dict[str, tuple[str, ...]] = {
    "effusion": (
        "effusion", "effusions", "pleural effusion", "pleural effusions", "pleural fluid",
        "fluid", "hydrothorax", "meniscus", "meniscus sign", "fluid around the lung", "fluid around the lungs",
        "fluid in the chest", "water on the lung", "water on the lungs", "pleural collection",
    ),
    "pleura": ("pleura", "pleural", "pleurae", "pleural line"),
    "pleural thickening": ("pleural thickening", "pleural thickenings", "pleural plaque", "pleural plaques"),
    "pneumothorax": ("pneumothorax", "pneumothoraces", "pneumothoraxes", "collapsed lung", "ptx",
                     "air in the chest", "air around the lung", "air around the lungs", "air in the pleural space"),
    "consolidation": (
        "consolidation", "consolidations", "consolidated", "consolidative", "airspace disease",
        "air space disease", "airspace opacity", "airspace opacities", "air bronchogram",
        "air bronchograms", "solid lung", "lung is solid",
    ),
    "pneumonia": ("pneumonia", "pneumonias", "pneumonic", "infection", "infectious process"),
    "atelectasis": ("atelectasis", "atelectases", "atelectatic", "collapse", "volume loss"),
    "cardiomegaly": (
        "cardiomegaly", "enlarged heart", "enlarged cardiac silhouette", "heart enlargement",
        "cardiac enlargement", "enlarged cardiac shadow", "enlargement of the heart",
        "enlargement of the cardiac silhouette", "heart is enlarged", "cardiac silhouette is enlarged",
        "heart size is enlarged", "heart appears enlarged", "cardiac silhouette appears enlarged",
        "large heart", "big heart",
    ),
    "edema": (
        "edema", "oedema", "pulmonary edema", "pulmonary oedema", "edematous", "oedematous",
        "vascular congestion", "pulmonary vascular congestion", "interstitial edema",
    ),
    "emphysema": ("emphysema", "emphysematous", "hyperinflation", "hyperinflated", "bullae", "bulla",
                  "hyperexpanded", "hyperexpansion", "overinflated", "overinflation", "hyperaerated"),
    "subcutaneous emphysema": ("subcutaneous emphysema", "surgical emphysema", "subcutaneous air",
                               "subcutaneous gas"),
    "pneumomediastinum": ("pneumomediastinum", "mediastinal emphysema"),
    "pneumoperitoneum": ("pneumoperitoneum", "free air", "free gas", "free subdiaphragmatic gas",
                         "free subdiaphragmatic air", "subdiaphragmatic air", "subdiaphragmatic gas",
                         "free intraperitoneal air", "free intraperitoneal gas", "air under the diaphragm",
                         "gas under the diaphragm"),
    "bronchiectasis": ("bronchiectasis", "bronchiectases", "bronchiectatic"),
    "metastasis": ("metastasis", "metastases", "metastatic", "metastatic disease"),
    "pulmonary hypertension": ("pulmonary hypertension", "pulmonary arterial hypertension",
                               "pulmonary artery hypertension", "pah", "enlarged pulmonary arteries",
                               "enlarged pulmonary artery", "pulmonary artery enlargement",
                               "prominent pulmonary arteries"),
    "vascular redistribution": ("vascular redistribution", "redistribution", "cephalization", "cephalisation",
                                "upper lobe diversion", "upper lobe venous diversion"),
    "septal lines": ("kerley b line", "kerley b lines", "kerley lines", "kerley a lines", "septal lines",
                     "interlobular septal thickening"),
    "kyphosis": ("kyphosis", "kyphotic", "kyphoscoliosis"),
    "scoliosis": ("scoliosis", "scoliotic"),
    "aortic elongation": ("aortic elongation", "elongated aorta", "elongation of the aorta", "tortuous aorta",
                          "aortic tortuosity", "unfolded aorta", "unfolding of the aorta"),
    "fibrosis": ("fibrosis", "fibrotic", "fibroses", "scarring", "scar", "scars"),
    "fracture": ("fracture", "fractures", "fractured", "rib fracture", "rib fractures"),
    "hernia": ("hernia", "hernias", "hiatal hernia", "hiatus hernia", "herniation"),
    "infiltration": ("infiltration", "infiltrations", "infiltrate", "infiltrates", "infiltrative"),
    "mass": ("mass", "masses", "tumor", "tumors", "tumour", "tumours"),
    "nodule": ("nodule", "nodules", "nodular", "pulmonary nodule", "pulmonary nodules", "lung nodule",
               "lung nodules"),
    "opacity": ("opacity", "opacities", "opacification", "opacified", "density", "densities",
                "shadowing"),
    "lesion": ("lesion", "lesions"),
    "lung": ("lung", "lungs", "pulmonary", "lung field", "lung fields", "lung base", "lung bases",
             "lung apex", "lung apices", "apex", "apices", "base", "bases"),
    "lobe": ("lobe", "lobes", "lobar", "upper lobe", "middle lobe", "lower lobe", "lingula", "lingular"),
    "heart": ("heart", "cardiac", "cardiac silhouette", "heart size", "cardiac size",
              "cardiomediastinal silhouette"),
    "rib": ("rib", "ribs"),
    "diaphragm": ("diaphragm", "diaphragms", "hemidiaphragm", "hemidiaphragms", "diaphragmatic"),
    "mediastinum": ("mediastinum", "mediastinal"),
    "mediastinal widening": ("mediastinal widening", "widened mediastinum", "widening of the mediastinum",
                             "mediastinal enlargement", "wide mediastinum"),
    "costophrenic": ("costophrenic", "costophrenic angle", "costophrenic angles", "cp angle",
                     "cp angles", "costophrenic recess"),
    "blunting": ("blunting", "blunted"),
    "hilum": ("hilum", "hila", "hilar", "hilar region"),
    "trachea": ("trachea", "tracheal"),
    "spine": ("spine", "vertebra", "vertebrae", "vertebral"),
    "clavicle": ("clavicle", "clavicles"),
    "aorta": ("aorta", "aortic", "aortic knob", "aortic arch"),
    # support devices: the kinds a report names, and the generic words ("tube", "line") for any of them
    "device": ("tube", "tubes", "catheter", "catheters", "line", "lines", "wire", "wires", "support device",
               "support devices", "device", "devices", "drain", "drains", "lead", "leads"),
    "endotracheal tube": ("endotracheal tube", "endotracheal tubes", "et tube", "ett", "tracheal tube",
                          "breathing tube", "intubated", "tracheostomy tube", "tracheostomy"),
    "enteric tube": ("nasogastric tube", "nasogastric tubes", "ng tube", "orogastric tube", "og tube",
                     "feeding tube", "enteric tube", "dobhoff tube", "dobhoff"),
    "central line": ("central line", "central lines", "central venous catheter", "central venous catheters",
                     "central venous line", "central catheter", "cvc", "picc", "picc line", "port-a-cath",
                     "internal jugular line", "internal jugular catheter", "subclavian line",
                     "subclavian catheter", "swan-ganz catheter", "venous catheter", "venous catheters",
                     "internal jugular venous catheter", "subclavian venous catheter", "ij catheter"),
    "chest tube": ("chest tube", "chest tubes", "pleural drain", "pleural catheter", "thoracostomy tube",
                   "pigtail catheter"),
    "pacemaker": ("pacemaker", "pacemakers", "pacer", "defibrillator", "icd", "pacemaker leads",
                  "pacing leads", "cardiac device", "loop recorder"),
    "sternotomy": ("sternotomy", "sternotomy wires", "sternal wires", "median sternotomy"),
    "tuberculosis": ("tuberculosis", "tb", "cavity", "cavities", "cavitation", "cavitary", "cavitating"),
    "calcification": ("calcification", "calcifications", "calcified", "granuloma", "granulomas"),
}

_CANONICAL: dict[str, str] = {s: c for c, forms in CONCEPTS.items() for s in forms}
DEFAULT_TERMS: tuple[str, ...] = tuple(sorted(_CANONICAL, key=lambda s: (-len(s), s)))

_WORD = r"A-Za-z0-9"


@dataclass(frozen=True)
class TermMatch:
    """One occurrence of a lexicon term: ``text[start:end]`` is the matched text."""

    term: str  # the lexicon term (lower case) that matched
    start: int
    end: int
    concept: str = ""  # its concept ("pleural effusions" -> "effusion"); the term itself if unknown


def concept_of(term: str) -> str:
    """The concept a term belongs to (``"enlarged heart"`` -> ``"cardiomegaly"``), else the term."""
    key = " ".join(term.lower().split())
    return _CANONICAL.get(key, key)


_SEPARATOR = r"[\s\-]+"


def _trie_pattern(terms: Sequence[str]) -> str:
    """One regular expression for many terms, factored on common prefixes so a position is tried against
    a letter's branch, not every term; at each branch longer continuations come first (longest match)."""
    trie: dict = {}
    for term in terms:
        node = trie
        for ch in term:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        alternatives = [(_SEPARATOR if ch == " " else re.escape(ch)) + build(node[ch]) for ch in sorted(node) if ch]
        if "" in node:
            alternatives.append("")
        if len(alternatives) == 1:
            return alternatives[0]
        return "(?:" + "|".join(alternatives) + ")"

    return build(trie)


@lru_cache(maxsize=32)
def _compile(terms: tuple[str, ...]) -> tuple[re.Pattern[str], dict[str, str]]:
    norm = sorted({" ".join(t.lower().split()) for t in terms if t.strip()})
    if not norm:
        return re.compile(r"(?!x)x"), {}
    pattern = re.compile(rf"(?<![{_WORD}]){_trie_pattern(norm)}(?![{_WORD}])", re.IGNORECASE)
    by_key = {_key(t, r"[\s\-]+"): t for t in norm} | {_key(t): t for t in norm}
    return pattern, by_key


def _key(text: str, separator: str = r"\s+") -> str:
    """A matched text as its term: lower case, each run of ``separator`` between words one space."""
    return re.sub(separator, " ", text.lower())


def match_terms(text: str, terms: Sequence[str] | None = None) -> list[TermMatch]:
    """Occurrences of ``terms`` (default: the whole lexicon) in ``text``, sorted by start.

    Case-insensitive, on word boundaries, longest term first at any position, never overlapping:
    "Small left pleural effusions." gives one match, term "pleural effusions", concept "effusion".
    """
    pattern, by_key = _compile(tuple(DEFAULT_TERMS if terms is None else terms))
    out: list[TermMatch] = []
    for m in pattern.finditer(text):
        term = by_key.get(_key(m.group())) or by_key[_key(m.group(), r"[\s\-]+")]
        out.append(TermMatch(term=term, start=m.start(), end=m.end(), concept=concept_of(term)))
    return out


def tokens_for_matches(
    matches: Sequence[TermMatch], token_offsets: Sequence[tuple[int, int]]
) -> dict[int, str]:
    """Token index -> matched term, for every token whose character span overlaps a match.

    ``token_offsets`` is a tokenizer's offset mapping into the same text the matches came from.
    Empty spans (special tokens, ``(0, 0)``) never match; a token overlapping two matches takes the one
    it overlaps most. A leading space inside a token's span is harmless: only overlap counts.
    """
    out: dict[int, str] = {}
    for i, (s, e) in enumerate(token_offsets):
        if e <= s:
            continue
        best, best_overlap = None, 0
        for m in matches:
            overlap = min(e, m.end) - max(s, m.start)
            if overlap > best_overlap:
                best, best_overlap = m.term, overlap
        if best is not None:
            out[i] = best
    return out
