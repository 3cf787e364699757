"""The answer reader on the way MedGemma writes: denied signs with a clause naming the finding, findings the
lexicon lacks, hedges (and the setting that decides them), hedge words asked about, long answers.

The corpus (tests/data/medgemma_register_answers.csv) was written for these tests in MedGemma-4b's register;
each row has the label a radiologist reads with hedges left open (``label``), whether a hedge qualified the
verdict (``hedged``), the label under ``hedged = "lean"`` (``lean``), the pattern it exercises and its batch
(``dev``: written before the rules changed for it; ``heldout``, ``heldout2``, ``heldout3``: each written after the rules
before it, and scored before any change).
"""

import csv
import time
from collections import Counter
from pathlib import Path

import pytest

from medgemma_tui.analysis.answers import HEDGED_READINGS, read_answer

CORPUS = Path(__file__).parent / "data" / "medgemma_register_answers.csv"
OLDER_CORPUS = Path(__file__).parent / "data" / "answer_corpus.csv"
PATTERNS = ("negated-sign-clause", "unknown-finding", "hedge", "hedge-word-asked", "register", "one-word")


def load(path=CORPUS):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_the_corpus_is_several_hundred_labelled_answers_across_the_patterns():
    rows = load()
    assert len(rows) >= 250
    counts = Counter(r["pattern"] for r in rows)
    assert set(counts) == set(PATTERNS) and min(counts.values()) >= 15, counts
    assert {r["label"] for r in rows} == {"yes", "no", "uncertain"}
    assert {r["hedged"] for r in rows} == {"0", "1"} and {r["lean"] for r in rows} == {"yes", "no", "uncertain"}
    assert sum("\n" in r["answer"] for r in rows) >= 8  # markdown lists and paragraphs
    assert sum(len(r["answer"]) > 200 for r in rows) >= 10 and sum(len(r["answer"]) < 8 for r in rows) >= 10
    assert len({(r["question"], r["answer"]) for r in rows}) == len(rows)
    assert {r["batch"] for r in rows} == {"dev", "heldout", "heldout2", "heldout3"}
    assert sum(r["batch"].startswith("heldout") for r in rows) >= 100


@pytest.mark.parametrize("hedged", HEDGED_READINGS)
def test_reader_is_right_on_99_percent_of_the_corpus_and_never_reads_yes_for_no(hedged):
    column = "label" if hedged == "uncertain" else "lean"
    rows = load()
    readings = [(r, read_answer(r["answer"], r["question"], hedged)) for r in rows]
    wrong = [(r, got) for r, got in readings if got.label != r[column]]
    flipped = [(r, got) for r, got in wrong if {got.label, r[column]} == {"yes", "no"}]
    report = "\n".join(f"{r['question']} | {r['answer']!r}: expected {r[column]}, read {got}" for r, got in wrong)
    assert 1 - len(wrong) / len(rows) >= 0.99, report
    assert not flipped, report


def test_the_hedge_flag_says_when_a_hedge_qualified_the_verdict():
    rows = load()
    wrong = [r for r in rows if read_answer(r["answer"], r["question"]).hedged != (r["hedged"] == "1")]
    assert len(wrong) / len(rows) <= 0.01, [(r["question"], r["answer"]) for r in wrong]


def test_one_word_answers_stay_exact_whatever_the_question():
    questions = ["Is there a pleural effusion?", "Is there kyphosis?", "Do you see any unclear area?",
                 "Is there free subdiaphragmatic gas?", "Is there evidence of PAH?", "Are the lungs clear?", None]
    for question in questions:
        for word, label in [("Yes", "yes"), ("No", "no"), ("yes.", "yes"), ("no.", "no"), ("**Yes**", "yes"),
                            ("NO<end_of_turn>", "no"), ("Yes<end_of_turn><eos>", "yes")]:
            for hedged in HEDGED_READINGS:
                reading = read_answer(word, question, hedged)
                assert (reading.label, reading.hedged) == (label, False), (question, word, hedged)
    for r in load():
        if r["pattern"] == "one-word":
            assert read_answer(r["answer"], r["question"]).label == r["label"], r


# the hardest case of each pattern: the one a reader that only counts cue words gets backwards
HARDEST = [
    # a denied sign, then a relative clause naming the finding: the clause does not assert it
    ("Is there a pleural effusion?",
     "Based on the image, there is no clear evidence of a pleural effusion. The costophrenic angles appear sharp, "
     "and there is no meniscus sign, which is a common sign of pleural effusion.", "no", "no", False),
    # the same clause after an affirmed sign does assert it
    ("Is there a pleural effusion?",
     "There is blunting of the left costophrenic angle, which is indicative of a pleural effusion.", "yes", "yes",
     False),
    # a clause stating a finding with a denied detail is no denial
    ("Is there evidence of pneumonia?",
     "There is consolidation without air bronchograms, which is consistent with pneumonia.", "yes", "yes", False),
    # a negation after something seen is a detail of it, not a denial of the sign
    ("Is there a pneumothorax?", "I can see a thin pleural line at the left apex with no lung markings beyond it, "
     "which suggests a small pneumothorax.", "uncertain", "yes", True),
    # another explanation offered for the finding leaves it open
    ("Is there a lung nodule?", "There appears to be a small nodule in the right lower lobe, but it could also be a "
     "nipple shadow.", "uncertain", "uncertain", True),
    # a generic caveat after a denial denies nothing and hedges nothing
    ("Is there a lung nodule?", "I do not see any nodules. However, small nodules may not be visible on a chest "
     "X-ray.", "no", "no", False),
    # a finding the lexicon lacks: read from the question's noun phrase, not from whatever else is named
    ("Is there elongation of the descending aorta?",
     "There is an opacity in the left lower lobe. The aorta is not elongated.", "no", "no", False),
    # a hedge leaning towards the finding: open by default, yes when hedges lean
    ("Is there evidence of pneumonia?",
     "Yes, there is an area of increased opacity in the left lower lobe, likely representing pneumonia.",
     "yes", "yes", True),
    ("Is there evidence of pneumonia?", "There is a patchy opacity in the right lower lobe, suggestive of pneumonia.",
     "uncertain", "yes", True),
    # a hedge that leans away from it
    ("Is there evidence of pneumonia?", "Pneumonia is unlikely; the lungs are clear.", "uncertain", "no", True),
    # a hedge that leans nowhere stays open under either setting
    ("Is there a pneumothorax?", "A small apical pneumothorax cannot be excluded.", "uncertain", "uncertain", True),
    # the hedge word is the thing asked about
    ("Do you see any unclear area?", "Yes, there are some areas that appear unclear in the right lower lung.",
     "yes", "yes", False),
    ("Do you see any unclear area?", "The lungs are clear.", "no", "no", False),
    # MedGemma's long form: a verdict, a markdown list of reasons, a disclaimer
    ("Is there a pleural effusion?",
     "No, there is no pleural effusion. Here's why:\n\n*   **Sharp costophrenic angles:** Both costophrenic angles "
     "are sharp and well-defined.\n*   **No meniscus sign:** There is no fluid level along the lateral chest "
     "walls.\n\nIt is important to note that this is based on a single image.", "no", "no", False),
    # a verdict, then "However," about another finding, cut at the token limit
    ("Is there a pneumothorax?",
     "Based on the image, there is no evidence of a pneumothorax. However, there is a small right pleural "
     "effusion, which", "no", "no", False),
]


@pytest.mark.parametrize(("question", "answer", "label", "lean", "hedged"), HARDEST)
def test_hardest_case_of_each_pattern(question, answer, label, lean, hedged):
    reading = read_answer(answer, question)
    assert (reading.label, reading.hedged) == (label, hedged), reading
    assert read_answer(answer, question, "lean").label == lean


def test_the_reason_names_the_words_that_decided():
    reading = read_answer("There is a patchy opacity in the right lower lobe, suggestive of pneumonia.",
                          "Is there evidence of pneumonia?", "lean")
    assert (reading.reason, reading.leans) == ("hedge 'suggestive of'", "yes")
    answer = "There is no blunting of the costophrenic angles, which are indicative of pleural effusion."
    reading = read_answer(answer, "Is there a pleural effusion?")
    assert reading.reason.startswith("negated finding") and answer[slice(*reading.cue_span)] == "no"
    answer = "The thoracic spine shows an increased kyphotic curvature."
    reading = read_answer(answer, "Is there kyphosis?")
    assert reading.label == "yes" and answer[slice(*reading.cue_span)] == "kyphotic"


def test_a_finding_the_lexicon_lacks_is_the_questions_own_but_a_question_about_any_finding_stays_open():
    # the question's own noun phrase decides, not the other findings the answer names
    assert read_answer("There is a small right pleural effusion. No goiter.", "Is there a goiter?").label == "no"
    assert read_answer("There is a small right pleural effusion.", "Is there a goiter?").label == "uncertain"
    # "acute disease", "something wrong with the heart" name no finding: any finding named answers them
    acute = "Is there any evidence of acute disease?"
    assert read_answer("There is a right lower lobe pneumonia.", acute).label == "yes"
    assert read_answer("No acute cardiopulmonary process.", acute).label == "no"
    assert read_answer("The heart size is normal.", "Is there something wrong with the heart?").label == "no"


def test_an_unknown_hedge_setting_is_refused():
    with pytest.raises(ValueError, match="hedged must be one of uncertain, lean"):
        read_answer("Yes.", "Is there a pleural effusion?", "maybe")


def test_every_cue_span_lies_inside_its_answer():
    for r in load():
        for hedged in HEDGED_READINGS:
            reading = read_answer(r["answer"], r["question"], hedged)
            if reading.cue_span is not None:
                start, end = reading.cue_span
                assert 0 <= start < end <= len(r["answer"]) and r["answer"][start:end].strip(), (r, reading)


def test_reading_takes_under_two_milliseconds_an_answer_on_one_cpu():
    rows = load() + load(OLDER_CORPUS)
    start = time.process_time()  # CPU time: the other users of a shared machine do not count
    for r in rows:
        read_answer(r["answer"], r["question"])
    per_answer = (time.process_time() - start) / len(rows)
    assert per_answer < 0.002, f"{per_answer * 1000:.2f} ms per answer"
