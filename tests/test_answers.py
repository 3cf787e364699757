"""Yes / no / uncertain from free-text answers, and scoring against ground truth."""

import csv
from pathlib import Path

import pytest

from medgemma_tui.analysis.answers import is_correct, normalise_truth, parse_answer, read_answer

EFF = "Is there a pleural effusion?"
PTX = "Is there a pneumothorax?"
CMG = "Is there cardiomegaly?"
NOD = "Is there a lung nodule?"
CON = "Is there consolidation in the right lower lobe?"

# (answer, question, expected label)
TABLE = [
    ("Yes.", EFF, "yes"),
    ("No.", EFF, "no"),
    ("yes<end_of_turn>", EFF, "yes"),
    ("No<end_of_turn><eos>", PTX, "no"),
    ("  **Yes**  ", None, "yes"),
    ("Yes, a small left effusion.", EFF, "yes"),
    ("Yes, there is a small left pleural effusion.", EFF, "yes"),
    ("No, the costophrenic angles are sharp.", EFF, "no"),
    ("No evidence of effusion.", EFF, "no"),
    ("There is no pneumothorax.", PTX, "no"),
    ("There is no pneumothorax.", None, "no"),
    ("Negative.", PTX, "no"),
    ("Positive", PTX, "yes"),
    ("Positive for pneumothorax.", PTX, "yes"),
    ("Negative for pneumothorax.", PTX, "no"),
    # a normal property answers the finding it rules out; clear lungs say nothing about the pleura
    ("The heart is normal in size.", CMG, "no"),
    ("The lungs are clear.", PTX, "uncertain"),
    ("Normal chest radiograph.", EFF, "no"),
    ("The heart is enlarged.", CMG, "yes"),
    ("The heart is not enlarged.", CMG, "no"),
    ("Cardiomegaly is present.", CMG, "yes"),
    ("Mild cardiomegaly.", CMG, "yes"),
    ("No cardiomegaly.", CMG, "no"),
    ("A right-sided pneumothorax is seen.", PTX, "yes"),
    ("Pneumothorax is not seen.", PTX, "no"),
    ("Pneumothorax is absent.", PTX, "no"),
    ("There is a small apical pneumothorax on the right.", PTX, "yes"),
    ("The lungs are clear without focal consolidation.", CON, "no"),
    ("Right lower lobe consolidation consistent with pneumonia.", CON, "yes"),
    ("No pneumothorax, but there is a small left effusion.", EFF, "yes"),
    ("No pneumothorax, but there is a small left effusion.", PTX, "no"),
    ("There is a 1 cm nodule in the left upper lobe.", NOD, "yes"),
    ("No suspicious pulmonary nodules.", NOD, "no"),
    ("None.", NOD, "no"),
    ("None seen.", None, "no"),
    ("Not present.", EFF, "no"),
    ("Present.", EFF, "yes"),
    ("Absent", EFF, "no"),
    ("A small effusion cannot be excluded.", EFF, "uncertain"),
    ("Possible small left effusion.", EFF, "uncertain"),
    ("It is unclear from this image.", EFF, "uncertain"),
    ("I don't know.", EFF, "uncertain"),
    ("Not sure.", EFF, "uncertain"),
    ("The finding may represent atelectasis or consolidation.", CON, "uncertain"),
    ("", EFF, "uncertain"),
    ("<end_of_turn>", EFF, "uncertain"),
    ("The image shows a chest radiograph.", EFF, "uncertain"),
    ("Yes, I know it is normal.", EFF, "yes"),
    ("The mediastinum is normal and I know of no prior.", EFF, "uncertain"),  # says nothing of the pleura
    ("Blunting of the left costophrenic angle by a pleural effusion.", EFF, "yes"),
    ("Effusion: none.", EFF, "no"),
]


@pytest.mark.parametrize(("answer", "question", "expected"), TABLE)
def test_answer_table(answer, question, expected):
    assert parse_answer(answer, question) == expected


def test_table_is_big_enough():
    assert len(TABLE) >= 40


def test_no_inside_normal_or_know_is_not_a_negation():
    reading = read_answer("Normal heart size, I know.", CMG)
    assert (reading.label, reading.reason, reading.cue_span) == ("no", "normal property 'heart size'", (0, 6))
    assert parse_answer("Known nodule.", NOD) == "yes"
    assert parse_answer("The abnormality is known.", None) == "uncertain"


def test_gemma_control_tokens_and_punctuation_are_stripped():
    assert parse_answer("\n  No.<end_of_turn>\n<eos>") == "no"
    assert parse_answer("model\nYes!") == "yes"


@pytest.mark.parametrize(
    ("truth", "norm"),
    [("yes", "yes"), ("Yes", "yes"), ("TRUE", "yes"), ("1", "yes"), (1, "yes"), (True, "yes"),
     ("Positive", "yes"), ("no", "no"), ("False", "no"), ("0", "no"), (0, "no"), ("negative", "no"),
     (" No. ", "no"), ("maybe", None), ("effusion", None), (None, None), (float("nan"), None)],
)
def test_ground_truth_spellings_are_normalised(truth, norm):
    assert normalise_truth(truth) == norm


def test_is_correct_compares_labels_and_refuses_non_yes_no_truth():
    assert is_correct("yes", "Yes") is True
    assert is_correct("no", "1") is False
    assert is_correct("no", "negative") is True
    assert is_correct("uncertain", "no") is False
    assert is_correct("yes", "left lower lobe") is None


# ---- the structured reading: each rule on known sentences, with the cue it reports ------------------
def cue(answer, question):
    """(label, reason, the text of the cue span) of a reading."""
    r = read_answer(answer, question)
    return r.label, r.reason, None if r.cue_span is None else answer[r.cue_span[0]: r.cue_span[1]]


def test_verdict_word_decides_and_points_at_itself():
    assert cue("No, the costophrenic angles are sharp.", EFF) == ("no", "verdict word 'no'", "No")
    assert cue("Based on the image, yes, there is a small pleural effusion.", EFF) == (
        "yes", "verdict word 'yes'", "yes")
    assert cue("The answer is no.", PTX) == ("no", "verdict word 'no'", "no")


def test_markdown_control_tokens_and_answer_prefix_keep_raw_spans():
    answer = "<start_of_turn>model\n**Answer:** **No**<end_of_turn><eos>"
    r = read_answer(answer, PTX)
    assert (r.label, r.reason) == ("no", "verdict word 'no'")
    assert answer[r.cue_span[0]: r.cue_span[1]] == "No"
    assert r.cue_span == (answer.index("No"), answer.index("No") + 2)


def test_negation_scope_runs_over_a_list_and_stops_at_a_termination_term():
    assert cue("There is no pleural effusion, pneumothorax, or focal consolidation.", CON) == (
        "no", "negated finding 'consolidation'", "no")
    assert cue("No pneumothorax, but there is a small left effusion.", EFF) == (
        "yes", "affirmed finding 'effusion'", "effusion")
    assert cue("There is no effusion and there is a small apical pneumothorax.", PTX) == (
        "yes", "affirmed finding 'pneumothorax'", "pneumothorax")
    assert cue("Pneumothorax is not seen.", PTX) == ("no", "negated finding 'pneumothorax'", "not")


def test_none_and_one_stand_for_the_finding_last_named():
    assert cue("There is a pleural effusion; no, wait, there is none.", EFF) == (
        "uncertain", "contradiction", "pleural effusion")
    assert cue("No large pneumothorax; a small one cannot be excluded.", PTX) == (
        "uncertain", "hedge 'cannot be excluded'", "cannot be excluded")
    assert cue("No left effusion. There is a small one on the right.", "Is there a right pleural effusion?")[0] == "yes"
    assert cue("It is unclear. There is none.", EFF)[0] == "uncertain"  # "none" with nothing named before it


def test_pseudo_negation_negates_nothing():
    assert cue("No significant change in the small left pleural effusion.", EFF)[0] == "yes"


def test_hedge_in_the_findings_scope_makes_it_uncertain_and_elsewhere_does_not():
    assert cue("No pneumothorax is seen. The heart is likely enlarged.", PTX) == (
        "no", "negated finding 'pneumothorax'", "No")
    assert cue("No pneumothorax is seen. The heart is likely enlarged.", CMG) == (
        "uncertain", "hedge 'likely'", "likely")
    assert cue("A small effusion cannot be excluded.", EFF) == (
        "uncertain", "hedge 'cannot be excluded'", "cannot be excluded")
    # a forward hedge governs what follows it, not the nodule before it
    assert cue("A spiculated nodule is present, concerning for malignancy.", NOD)[0] == "yes"
    # a negation that opens the scope governs the hedge inside it
    assert cue("There is no focal consolidation to suggest pneumonia.", "Is there pneumonia?")[0] == "no"


def test_anatomy_with_a_property_is_read_through_that_property():
    assert cue("The heart is normal in size.", "Is the heart enlarged?") == (
        "no", "normal property 'heart size'", "normal in size")
    assert cue("The heart is normal in size.", CMG)[:2] == ("no", "normal property 'heart size'")
    assert cue("The cardiac silhouette is mildly enlarged.", CMG) == (
        "yes", "affirmed finding 'cardiomegaly'", "enlarged")
    assert cue("The heart does not appear enlarged.", "Is the heart enlarged?") == (
        "no", "negated finding 'cardiomegaly'", "not")
    assert cue("The mediastinum appears widened.", "Is the mediastinum widened?")[0] == "yes"
    assert cue("The mediastinum is not widened.", "Is the mediastinum widened?")[0] == "no"


def test_clear_lungs_answer_parenchymal_questions_not_pleural_ones():
    lungs = "Are the lungs clear?"
    assert cue("The lungs are clear.", lungs) == ("yes", "normal property 'lungs'", "clear")
    assert cue("The lungs are clear.", CON) == ("no", "normal property 'lungs'", "clear")
    assert cue("The lungs are clear.", PTX)[0] == "uncertain"
    assert cue("There is a left lower lobe opacity.", lungs) == ("no", "affirmed finding 'opacity'", "opacity")
    assert cue("The costophrenic angles are sharp.", EFF)[:2] == ("no", "normal property 'costophrenic angles'")


def test_a_normal_study_rules_out_every_finding_and_no_acute_process_only_the_acute_ones():
    assert cue("Normal chest radiograph.", EFF) == ("no", "normal study", "Normal")
    assert cue("No acute cardiopulmonary process.", CON)[:2] == ("no", "normal study")
    assert cue("No acute cardiopulmonary process.", NOD)[0] == "uncertain"


def test_laterality_and_lobe_are_checked_when_the_question_names_them():
    left = "Is there a pleural effusion in the left lung?"
    assert cue("There is a pleural effusion on the right side only.", left) == (
        "no", "laterality mismatch", "right")
    assert cue("Small bilateral pleural effusions.", left)[0] == "yes"
    assert cue("There is a small pleural effusion.", left)[0] == "yes"  # side not stated: not contradicted
    assert cue("No left pleural effusion. There is a small right effusion.", left)[0] == "no"
    assert cue("No left pleural effusion. There is a small right effusion.", EFF)[0] == "yes"
    assert cue("There is consolidation in the right upper lobe.", CON) == ("no", "lobe mismatch", "consolidation")
    # each finding takes the side words next to it, not every side word of its clause
    eff_right = "Is there a right pleural effusion?"
    assert cue("Left pleural effusion with right lower lobe atelectasis.", eff_right)[:2] == (
        "no", "laterality mismatch")
    ptx_right = "Is there a pneumothorax on the right?"
    assert cue("There is a large pneumothorax on the left with mediastinal shift to the right.", ptx_right) == (
        "no", "laterality mismatch", "left")


def test_contradictions_are_flagged_not_guessed():
    assert cue("No. There is a small effusion.", EFF) == ("uncertain", "contradiction", "No")
    assert cue("Yes, the heart is normal in size.", CMG) == ("uncertain", "contradiction", "Yes")
    assert cue("Yes, there is a left pleural effusion.", "Is there a right pleural effusion?")[:2] == (
        "uncertain", "contradiction")
    assert cue("No, there is no effusion; there is a moderate right pleural effusion.", EFF)[:2] == (
        "uncertain", "contradiction")
    # a hedge after a verdict word does not contradict it
    assert cue("No, although a tiny effusion cannot be excluded.", EFF)[:2] == ("no", "verdict word 'no'")
    # an answer about another finding contradicts nothing
    assert cue("No. There is a small effusion.", PTX)[:2] == ("no", "verdict word 'no'")


def test_devices_are_told_apart_and_a_generic_negation_covers_them_all():
    assert cue("A right internal jugular central line is present.", "Is a central venous catheter present?")[0] == "yes"
    assert cue("A right internal jugular central line is present.", "Is there an endotracheal tube?")[:2] == (
        "uncertain", "asked finding not mentioned")
    assert cue("No lines or tubes are seen.", "Is there a nasogastric tube?")[:2] == (
        "no", "negated finding 'device'")
    devices = "Are there any support devices?"
    assert cue("An endotracheal tube and a nasogastric tube are in place.", devices)[0] == "yes"


def test_elliptic_answers_refer_to_the_question():
    assert cue("Not present.", EFF) == ("no", "negation 'not'", "Not")
    assert cue("Present.", EFF) == ("yes", "verdict word 'present'", "Present")
    assert cue("Not sure.", EFF) == ("uncertain", "hedge 'not sure'", "Not sure")
    assert cue("Clear.", "Are the lungs clear?")[0] == "yes"


def test_empty_and_off_topic_answers_have_no_cue():
    assert read_answer("<end_of_turn>", EFF) == read_answer("", EFF)
    assert read_answer("", EFF).reason == "empty answer" and read_answer("", EFF).cue_span is None
    assert cue("This is a frontal view of the chest.", EFF) == ("uncertain", "asked finding not mentioned", None)


# ---- the corpus: hand-written answers in MedGemma's register, with their expected label ---------------
CORPUS = Path(__file__).parent / "data" / "answer_corpus.csv"


def load_corpus():
    with CORPUS.open(newline="") as f:
        return list(csv.DictReader(f))


def test_corpus_is_large_and_varied():
    rows = load_corpus()
    assert len(rows) >= 200
    assert {r["expected"] for r in rows} == {"yes", "no", "uncertain"}
    categories = {r["category"] for r in rows}
    assert {r["batch"] for r in rows} == {"dev", "heldout1", "adversarial", "heldout2", "heldout3"}
    for needed in ("negation", "hedge", "laterality", "lobe", "normality", "property", "device", "markdown",
                   "control", "contradiction", "scope", "adversarial"):
        assert needed in categories, needed


def test_reader_accuracy_on_the_corpus():
    rows = load_corpus()
    wrong = [(r["question"], r["answer"], r["expected"], read_answer(r["answer"], r["question"]))
             for r in rows if parse_answer(r["answer"], r["question"]) != r["expected"]]
    accuracy = 1 - len(wrong) / len(rows)
    assert accuracy >= 0.97, "\n".join(f"{q} | {a!r}: expected {e}, read {got}" for q, a, e, got in wrong)


def test_every_cue_span_lies_inside_its_answer():
    for r in load_corpus():
        reading = read_answer(r["answer"], r["question"])
        if reading.cue_span is not None:
            start, end = reading.cue_span
            assert 0 <= start < end <= len(r["answer"]) and r["answer"][start:end].strip(), (r, reading)
