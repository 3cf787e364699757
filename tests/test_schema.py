"""Dataset CSV: aliases, defaults, keys that never collide across variants, groups, bbox, strategies, errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from medgemma_tui.data.schema import (
    NO_WORDS,
    YES_WORDS,
    DatasetError,
    Sample,
    load_dataset,
    normalise_answer,
    normalise_strategy,
    parse_bbox,
)

HEADER = "study_id,dicom_id,image_path,question,answer,baseline_question,question_variant,variant_index,strategy"
DICOM_A = "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014"
DICOM_B = "174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962"


def write_csv(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text.strip("\n") + "\n")
    return path


def hard_positive_csv(tmp_path: Path) -> Path:
    effusion = "Is there a pleural effusion?"
    a = f"50414267,{DICOM_A},files/p10/a.jpg"
    return write_csv(tmp_path, f"""
{HEADER}
{a},{effusion},yes,{effusion},original,0,
{a},Is any pleural effusion present?,yes,{effusion},hard_positive_1,1,synonym replacement
{a},"Pleural effusion, is it there?",yes,{effusion},hard_positive_2,2,Clause reordering
{a},Is the heart enlarged?,no,Is the heart enlarged?,original,0,
53189527,{DICOM_B},files/p11/b.jpg,Is there a pneumothorax?,no,Is there a pneumothorax?,original,0,
""")


# --- reading -------------------------------------------------------------------------------------------


def test_reads_every_field_and_resolves_images_against_the_csv_folder(tmp_path):
    dataset = load_dataset(hard_positive_csv(tmp_path))
    assert len(dataset) == 5
    assert dataset.path == tmp_path / "data.csv"
    assert dataset.images_root == tmp_path
    assert dataset.columns == tuple(HEADER.split(","))
    first = dataset[1]
    assert isinstance(first, Sample)
    assert first.row == 1
    assert first.study_id == "50414267"
    assert first.dicom_id == DICOM_A
    assert first.image_path == "files/p10/a.jpg"
    assert first.image == tmp_path / "files/p10/a.jpg"
    assert first.question == "Is any pleural effusion present?"
    assert first.answer == "yes"
    assert first.baseline_question == "Is there a pleural effusion?"
    assert first.question_variant == "hard_positive_1"
    assert first.variant_index == 1
    assert first.strategy == "synonym replacement"
    assert first.problem is None and first.line == 3
    assert first.strategy_kinds == ("synonym_replacement",)
    assert first.bbox == () and first.finding == "" and first.extra == {}
    assert dataset[2].question == "Pleural effusion, is it there?"


def test_images_root_argument_overrides_the_csv_folder(tmp_path):
    dataset = load_dataset(hard_positive_csv(tmp_path), images_root=tmp_path / "imgs")
    assert dataset.images_root == tmp_path / "imgs"
    assert dataset[0].image == tmp_path / "imgs" / "files/p10/a.jpg"


def test_study_and_dicom_ids_keep_leading_zeros_as_text(tmp_path):
    path = write_csv(tmp_path, "study_id,dicom_id,image_path,question,answer\n00123,0007,x.png,Q?,yes\n")
    sample = load_dataset(path)[0]
    assert (sample.study_id, sample.dicom_id) == ("00123", "0007")


@pytest.mark.parametrize("alias", ["ground_truth", "label", "correct_answer", "Answer", " ANSWER "])
def test_answer_aliases_are_accepted(tmp_path, alias):
    path = write_csv(tmp_path, f"image_path,question,{alias}\nx.png,Is there edema?,no\n")
    assert load_dataset(path)[0].answer == "no"


def test_answer_column_wins_over_an_alias_which_is_kept_as_extra(tmp_path):
    path = write_csv(tmp_path, "image_path,question,label,answer\nx.png,Q?,1,yes\n")
    sample = load_dataset(path)[0]
    assert sample.answer == "yes"
    assert sample.extra == {"label": "1"}


def test_missing_optional_columns_get_their_defaults(tmp_path):
    path = write_csv(tmp_path, "image_path,question,answer\nx.png,Is there edema?,no\ny.png,Any mass?,yes\n")
    dataset = load_dataset(path)
    sample = dataset[0]
    assert sample.baseline_question == "Is there edema?"
    assert sample.variant_index == 0
    assert sample.question_variant == "original"
    assert sample.strategy == ""
    assert sample.strategy_kinds == ("original",)
    assert sample.study_id == "" and sample.dicom_id == ""
    assert (sample.bbox, sample.finding) == ((), "")
    assert [s.key for s in dataset] == ["x_v0", "y_v0"]


def test_empty_cells_get_the_same_defaults_as_missing_columns(tmp_path):
    path = write_csv(tmp_path, f"{HEADER}\n1,d,x.png,Q?,yes,,,,\n")
    sample = load_dataset(path)[0]
    assert (sample.baseline_question, sample.variant_index, sample.question_variant, sample.strategy) == (
        "Q?", 0, "original", "")


def test_other_columns_are_kept_in_extra(tmp_path):
    path = write_csv(tmp_path, "image_path,question,answer,finding,bbox,view,split\n"
                               "x.png,Q?,yes,Effusion,\"1,2,3,4\",PA,test\n")
    sample = load_dataset(path)[0]
    assert sample.extra == {"view": "PA", "split": "test"}
    assert sample.finding == "Effusion"
    assert sample.bbox == ((1.0, 2.0, 3.0, 4.0),)


# --- keys ----------------------------------------------------------------------------------------------


def test_variants_of_one_study_never_share_a_key(tmp_path):
    dataset = load_dataset(hard_positive_csv(tmp_path))
    keys = [s.key for s in dataset]
    assert len(set(keys)) == len(keys)
    study = [s.key for s in dataset if s.study_id == "50414267"]
    assert len(set(study)) == 4
    # that film is asked two baseline questions, so its keys carry a tag of the question
    tag = keys[0].split("_")[2]
    assert tag.startswith("q") and len(tag) == 7
    assert keys[:3] == [f"s50414267_02aa804e_{tag}_v0", f"s50414267_02aa804e_{tag}_v1", f"s50414267_02aa804e_{tag}_v2"]


def test_keys_are_filesystem_safe_and_readable(tmp_path):
    path = write_csv(tmp_path, "study_id,dicom_id,image_path,question,answer,variant_index\n"
                               "s/../1 2,a:b*c?,x.png,Q?,yes,3\n")
    key = load_dataset(path)[0].key
    assert re.fullmatch(r"[A-Za-z0-9._-]+", key)
    assert key == "s_.._1_2_a_b_c_v3"


def test_rows_of_one_film_and_two_questions_never_overwrite_each_other(tmp_path):
    dataset = load_dataset(hard_positive_csv(tmp_path))
    # rows 0 and 3 are both (study, dicom, variant 0) with different baseline questions
    assert dataset[0].key != dataset[3].key
    assert dataset[0].key.endswith("_v0") and dataset[3].key.endswith("_v0")
    assert len({s.key for s in dataset}) == len(dataset)


def test_exact_duplicate_rows_still_get_distinct_keys(tmp_path):
    path = write_csv(tmp_path, "image_path,question,answer\nx.png,Q?,yes\nx.png,Q?,yes\nx.png,Q?,yes\n")
    assert [s.key for s in load_dataset(path)] == ["x_v0", "x_v0_r1", "x_v0_r2"]


# --- groups --------------------------------------------------------------------------------------------


def test_groups_are_image_and_baseline_question_sorted_by_variant_index(tmp_path):
    path = write_csv(tmp_path, f"""
{HEADER}
1,a,img.png,Variant two?,yes,Is there X?,hard_positive_2,2,voice change
1,a,img.png,Is there X?,yes,Is there X?,original,0,
1,a,img.png,Is there Y?,no,Is there Y?,original,0,
2,b,other.png,Is there X?,no,Is there X?,original,0,
1,a,img.png,Variant one?,yes,Is there X?,hard_positive_1,1,register shift
""")
    groups = load_dataset(path).groups()
    assert list(groups) == [("img.png", "Is there X?"), ("img.png", "Is there Y?"), ("other.png", "Is there X?")]
    assert [s.variant_index for s in groups[("img.png", "Is there X?")]] == [0, 1, 2]
    assert [s.row for s in groups[("img.png", "Is there X?")]] == [1, 4, 0]
    assert len(groups[("other.png", "Is there X?")]) == 1


# --- bbox ----------------------------------------------------------------------------------------------


def test_bbox_parsing_single_multiple_and_empty():
    assert parse_bbox("") == ()
    assert parse_bbox("10,20,30,40") == ((10.0, 20.0, 30.0, 40.0),)
    assert parse_bbox(" 10, 20.5 ,30,40 ; 1,2,3,4; ") == ((10.0, 20.5, 30.0, 40.0), (1.0, 2.0, 3.0, 4.0))
    assert parse_bbox("[10, 20, 30, 40]") == ((10.0, 20.0, 30.0, 40.0),)


def test_bbox_column_is_parsed_per_row(tmp_path):
    path = write_csv(tmp_path, 'image_path,question,answer,bbox\nx.png,Q?,yes,"5,6,7,8;9,10,11,12"\n'
                               "y.png,Q?,no,\n")
    dataset = load_dataset(path)
    assert dataset[0].bbox == ((5.0, 6.0, 7.0, 8.0), (9.0, 10.0, 11.0, 12.0))
    assert dataset[1].bbox == ()


@pytest.mark.parametrize("value", ["1,2,3", "a,b,c,d", "1,2,3,4,5", "1,2,-3,4", "1,2,nan,4"])
def test_unparseable_bbox_fails_that_row_only_naming_the_value(tmp_path, value):
    path = write_csv(tmp_path, f'image_path,question,answer,bbox\nx.png,Q?,yes,"1,2,3,4"\ny.png,Q?,yes,"{value}"\n')
    good, bad = load_dataset(path)
    assert good.problem is None and good.bbox == ((1.0, 2.0, 3.0, 4.0),)
    assert bad.bbox == ()
    assert "\n" not in bad.problem
    assert bad.problem.startswith("unparseable bbox") and repr(value) in bad.problem


# --- strategy ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kinds"), [
    ("Synonym replacement + clause reordering", ("synonym_replacement", "clause_reordering")),
    ("REGISTER_SHIFT", ("register_shift",)),
    ("voice change & phrasing variation", ("phrasing_variation", "voice_change")),
    ("phrasing variation & voice change", ("phrasing_variation", "voice_change")),
    ("passive voice", ("voice_change",)),
    ("synonym_replacement,register_shift", ("synonym_replacement", "register_shift")),
    ("clause reordering and synonym replacement", ("synonym_replacement", "clause_reordering")),
    ("Phrasing/Register", ("phrasing_variation", "register_shift")),
    ("paraphrase", ("phrasing_variation",)),
    ("", ("original",)),
    (None, ("original",)),
    ("original", ("original",)),
    ("  Original  ", ("original",)),
    ("negation flip", ("other",)),
    ("synonym replacement + negation", ("synonym_replacement", "other")),
])
def test_messy_strategy_strings_map_to_named_kinds(text, kinds):
    assert normalise_strategy(text) == kinds


def test_sample_strategy_kinds_use_the_variant_index_for_originals(tmp_path):
    dataset = load_dataset(hard_positive_csv(tmp_path))
    assert [s.strategy_kinds for s in dataset][:3] == [
        ("original",), ("synonym_replacement",), ("clause_reordering",)]


# --- errors --------------------------------------------------------------------------------------------


def assert_dataset_error(path: Path, *phrases: str) -> str:
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    message = str(info.value)
    assert "\n" not in message
    assert isinstance(info.value, ValueError)
    for phrase in phrases:
        assert phrase in message, message
    return message


def test_missing_file_is_named(tmp_path):
    assert_dataset_error(tmp_path / "nope.csv", "not found", "nope.csv")


def test_directory_is_rejected(tmp_path):
    assert_dataset_error(tmp_path, "directory")


def test_missing_answer_names_the_column_and_its_aliases(tmp_path):
    path = write_csv(tmp_path, "image_path,question,truth\nx.png,Q?,yes\n")
    message = assert_dataset_error(path, "missing column 'answer'",
                                   "also accepted: ground_truth, label, correct_answer")
    assert "truth" in message  # what was found, to spot a typo


@pytest.mark.parametrize("column", ["image_path", "question"])
def test_missing_required_column_is_named(tmp_path, column):
    header = ",".join(c for c in ("image_path", "question", "answer") if c != column)
    path = write_csv(tmp_path, f"{header}\na,b\n")
    assert_dataset_error(path, f"missing column '{column}'", str(path))


def test_completely_empty_csv(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    assert_dataset_error(path, "empty CSV", str(path))


def test_header_only_csv_is_empty(tmp_path):
    path = write_csv(tmp_path, "image_path,question,answer\n")
    assert_dataset_error(path, "empty CSV", "no rows")


def test_bad_variant_index_fails_that_row_only_naming_the_value(tmp_path):
    path = write_csv(tmp_path, "image_path,question,answer,variant_index\nx.png,Q?,yes,0\nx.png,R?,yes,two\n")
    good, bad = load_dataset(path)
    assert good.problem is None
    assert bad.problem == "'variant_index' must be a whole number, got 'two'"
    assert good.key != bad.key


def test_a_csv_whose_only_row_is_bad_names_the_row_and_the_problem(tmp_path):
    path = write_csv(tmp_path, "image_path,question,answer\nx.png,,yes\n")
    assert_dataset_error(path, "no row can run", "row 0 (line 2)", "empty 'question'")


def test_a_question_past_the_length_limit_fails_that_row_only_saying_the_limit(tmp_path):
    from medgemma_tui.data.schema import MAX_QUESTION_CHARS

    longest = "Is there a nodule? " + "x" * (MAX_QUESTION_CHARS - 19)
    path = write_csv(tmp_path, f"image_path,question,answer\na.png,{longest},yes\nb.png,{longest}x,no\n")
    first, second = load_dataset(path)
    assert first.problem is None
    assert second.problem == f"the question has {MAX_QUESTION_CHARS + 1:,} characters, more than the " \
                             f"{MAX_QUESTION_CHARS:,} allowed"


def test_a_row_asking_an_earlier_rows_question_about_the_same_film_is_named_with_that_row(tmp_path):
    from medgemma_tui.data.schema import duplicate_rows

    path = write_csv(tmp_path, "image_path,question,answer\na.png,Is there edema?,yes\nb.png,Is there edema?,no\n"
                               "a.png,Is there  EDEMA?,yes\na.png,Is the heart enlarged?,no\na.png,,yes\n"
                               "a.png,,yes\n")
    dataset = load_dataset(path)
    assert [(again.line, first.line) for again, first in duplicate_rows(dataset.samples)] == [(4, 2)]
    assert len({s.key for s in dataset}) == 6  # kept, each with a key of its own


def test_an_empty_question_fails_that_row_only_and_the_others_load(tmp_path):
    path = write_csv(tmp_path, "image_path,question,answer\na.png,Is there edema?,yes\nb.png,,no\n"
                               "c.png,Any mass?,no\n")
    dataset = load_dataset(path)
    assert [s.problem for s in dataset] == [None, "empty 'question'", None]
    assert [s.image_path for s in dataset.problems] == ["b.png"]
    assert [s.key for s in dataset] == ["a_v0", "b_v0", "c_v0"]
    assert dataset[1].line == 3 and dataset[1].row == 1


def test_an_empty_image_path_fails_that_row_with_a_key_of_its_own(tmp_path):
    path = write_csv(tmp_path, "image_path,question,answer\na.png,Q?,yes\n,Q?,no\n ,R?,no\n")
    dataset = load_dataset(path)
    assert [s.problem for s in dataset] == [None, "empty 'image_path'", "empty 'image_path'"]
    assert [s.key for s in dataset] == ["a_v0", "row1_v0", "row2_v0"]
    (tmp_path / "a.png").write_bytes(b"")
    assert dataset.missing_images() == []  # a row that cannot run is not also a missing image


def test_a_row_with_more_cells_than_the_header_fails_alone_and_a_short_row_is_padded(tmp_path):
    path = write_csv(tmp_path, "image_path,question,answer,finding\na.png,Q?,yes,mass,oops\nb.png,Q?,no\n")
    long, short = load_dataset(path)
    assert long.problem == "5 cells where the header has 4 (1 too many: a delimiter inside an unquoted cell?)"
    assert short.problem is None and (short.answer, short.finding) == ("no", "")


def test_every_problem_of_a_row_is_named(tmp_path):
    path = write_csv(tmp_path, "image_path,question,answer,variant_index\nok.png,Q?,yes,0\n,,yes,1.5\n")
    assert load_dataset(path)[1].problem == (
        "empty 'image_path'; empty 'question'; 'variant_index' must be a whole number, got '1.5'")


def test_a_csv_that_is_not_utf8_says_so(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("image_path,question,answer\nx.png,Épanchement ?,yes\n".encode("latin-1"))
    assert_dataset_error(path, "not UTF-8", "0xc9", "save the CSV as UTF-8")


# --- delimiters and headers --------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_semicolon_tab_and_pipe_csvs_read_like_comma_ones(tmp_path, delimiter):
    header = delimiter.join(["image_path", "question", "answer", "bbox", "strategy"])
    row = delimiter.join(["x.png", '"Is there a mass, or a nodule?"', "Yes", '"1,2,3,4;5,6,7,8"', "voice change"])
    dataset = load_dataset(write_csv(tmp_path, f"{header}\n{row}\n"))
    assert dataset.delimiter == delimiter
    sample = dataset[0]
    assert sample.problem is None
    assert (sample.image_path, sample.question, sample.answer) == ("x.png", "Is there a mass, or a nodule?", "yes")
    assert sample.bbox == ((1.0, 2.0, 3.0, 4.0), (5.0, 6.0, 7.0, 8.0))
    assert sample.strategy_kinds == ("voice_change",)


def test_a_header_naming_no_known_column_says_how_it_was_split(tmp_path):
    path = write_csv(tmp_path, "img;q;truth\nx.png;Q?;yes\n")
    assert_dataset_error(path, "missing column 'image_path'", "'img', 'q', 'truth'", "read as semicolon-separated")


def test_a_byte_order_mark_and_spaced_header_names_are_read(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffImage Path;Question;Ground-Truth\r\nx.png;Q?;No\r\n".encode())
    sample = load_dataset(path)[0]
    assert (sample.image_path, sample.question, sample.answer) == ("x.png", "Q?", "no")


# --- answers and strategies as stored -----------------------------------------------------------------


def test_yes_and_no_spellings_are_normalised_and_other_answers_are_kept_unscored(tmp_path):
    path = write_csv(tmp_path, "image_path,question,answer\n"
                               "a.png,Q?,Yes\nb.png,Q?,NO\nc.png,Q?, yes \nd.png,Q?,maybe\ne.png,Q?,\n"
                               "f.png,,yes\n")
    dataset = load_dataset(path)
    assert [s.answer for s in dataset] == ["yes", "no", "yes", "maybe", "", "yes"]
    assert [s.is_scored for s in dataset] == [True, True, True, False, False, False]
    assert dataset.scored_count == 3


def test_answer_spellings_match_what_the_scorer_reads_as_yes_and_no():
    from medgemma_tui.analysis.answers import normalise_truth

    words = sorted(YES_WORDS | NO_WORDS) + ["Maybe", "uncertain", "", "Yes.", " TRUE "]
    assert [normalise_answer(w) if normalise_answer(w) in ("yes", "no") else None for w in words] == [
        normalise_truth(w) for w in words]


def test_strategy_is_stored_cleaned(tmp_path):
    path = write_csv(tmp_path, "image_path,question,answer,variant_index,strategy\n"
                               "a.png,Q?,yes,1, Synonym_Replacement  +  Clause-Reordering \n")
    sample = load_dataset(path)[0]
    assert sample.strategy == "synonym replacement + clause reordering"
    assert sample.strategy_kinds == ("synonym_replacement", "clause_reordering")


def test_a_film_asked_two_baseline_questions_keeps_readable_distinct_keys_whatever_the_row_order(tmp_path):
    header = "study_id,dicom_id,image_path,question,answer,baseline_question,variant_index\n"
    rows = ["1,d,a.png,Is there a mass?,no,Is there a mass?,0\n",
            "1,d,a.png,Is there a nodule?,yes,Is there a nodule?,0\n",
            "1,d,a.png,Is a nodule present?,yes,Is there a nodule?,1\n"]
    first = tmp_path / "a.csv"
    first.write_text(header + "".join(rows))
    second = tmp_path / "b.csv"
    second.write_text(header + "".join(reversed(rows)))
    keys = {s.question: s.key for s in load_dataset(first)}
    assert len(set(keys.values())) == 3
    assert all(k.startswith("s1_d_q") and "_r" not in k for k in keys.values())
    assert keys == {s.question: s.key for s in load_dataset(second)}


def test_a_bad_row_never_changes_the_keys_of_the_good_rows(tmp_path):
    nodule = "Is there a nodule?"
    good = [f"1,d,a.png,{nodule},yes,0,{nodule}", f"1,d,a.png,Is a nodule seen?,yes,1,{nodule}"]
    bad = ["1,d,a.png,,yes,0,", "1,d,a.png,Is there a mass?,no,zero,Is there a mass?"]
    header = "study_id,dicom_id,image_path,question,answer,variant_index,baseline_question"
    clean = load_dataset(write_csv(tmp_path, "\n".join([header, *good]), "clean.csv"))
    messy = load_dataset(write_csv(tmp_path, "\n".join([header, bad[0], good[0], bad[1], good[1]]), "messy.csv"))
    assert [s.key for s in clean] == ["s1_d_v0", "s1_d_v1"]
    assert [s.key for s in messy if s.problem is None] == ["s1_d_v0", "s1_d_v1"]
    assert len({s.key for s in messy}) == 4
