"""Yes / no / uncertain from free-text answers, and scoring against ground truth."""

import pytest

from medgemma_tui.analysis.answers import is_correct, normalise_truth, parse_answer

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
    ("The heart is normal in size.", CMG, "uncertain"),
    ("The lungs are clear.", PTX, "uncertain"),
    ("Normal chest radiograph.", EFF, "uncertain"),
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
    ("The mediastinum is normal and I know of no prior.", EFF, "no"),
    ("Blunting of the left costophrenic angle by a pleural effusion.", EFF, "yes"),
    ("Effusion: none.", EFF, "no"),
]


@pytest.mark.parametrize(("answer", "question", "expected"), TABLE)
def test_answer_table(answer, question, expected):
    assert parse_answer(answer, question) == expected


def test_table_is_big_enough():
    assert len(TABLE) >= 40


def test_no_inside_normal_or_know_is_not_a_negation():
    assert parse_answer("Normal heart size, I know.", CMG) == "uncertain"
    assert parse_answer("Known nodule.", NOD) == "yes"


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
