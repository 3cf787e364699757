"""Finding and anatomy terms in questions and answers, and the tokens that carry them."""

from medgemma_tui.analysis.lexicon import DEFAULT_TERMS, concept_of, match_terms, tokens_for_matches


def spans(text, terms=None):
    return [(m.term, text[m.start: m.end]) for m in match_terms(text, terms)]


def test_rib_is_not_found_inside_ribbon():
    assert spans("A ribbon-like artefact overlies the chest.") == []
    assert spans("Fracture of the left sixth rib.") == [("fracture", "Fracture"), ("rib", "rib")]


def test_words_containing_no_term_give_nothing():
    assert spans("The study is normal, I know.") == []


def test_longest_multiword_term_wins_over_its_parts():
    text = "Is there a pleural effusion?"
    assert spans(text) == [("pleural effusion", "pleural effusion")]
    ms = match_terms("Findings suggest an enlarged heart.")
    assert [(m.term, m.concept) for m in ms] == [("enlarged heart", "cardiomegaly")]


def test_plurals_and_inflections_match_with_their_concept():
    ms = match_terms("Bilateral pleural effusions and nodular opacities; atelectatic bases.")
    assert [m.term for m in ms] == ["pleural effusions", "nodular", "opacities", "atelectatic", "bases"]
    assert [m.concept for m in ms] == ["effusion", "nodule", "opacity", "atelectasis", "lung"]


def test_matching_ignores_case():
    assert spans("PNEUMOTHORAX on the Left; Cardiomegaly.") == [
        ("pneumothorax", "PNEUMOTHORAX"),
        ("cardiomegaly", "Cardiomegaly"),
    ]


def test_hyphen_is_a_word_boundary_and_joins_multiword_terms():
    assert spans("Right-sided effusion.") == [("effusion", "effusion")]
    assert spans("Small pleural-effusion.") == [("pleural effusion", "pleural-effusion")]
    assert spans("Blunted costophrenic  angles.") == [("blunted", "Blunted"),
                                                      ("costophrenic angles", "costophrenic  angles")]


def test_british_and_american_spellings_share_a_concept():
    assert concept_of("oedema") == concept_of("edema") == "edema"
    assert [m.concept for m in match_terms("Pulmonary oedema, hilar haze.")] == ["edema", "hilum"]


def test_matches_are_sorted_and_never_overlap():
    text = "No pleural effusion or pneumothorax; left lower lobe consolidation and a lung nodule."
    ms = match_terms(text)
    assert [m.start for m in ms] == sorted(m.start for m in ms)
    assert all(a.end <= b.start for a, b in zip(ms, ms[1:], strict=False))
    assert [m.term for m in ms] == ["pleural effusion", "pneumothorax", "lower lobe", "consolidation",
                                    "lung nodule"]


def test_custom_term_list_replaces_the_lexicon():
    assert spans("Heart and lungs; hilar fullness.", ["hilar fullness", "heart"]) == [
        ("heart", "Heart"),
        ("hilar fullness", "hilar fullness"),
    ]


def test_default_lexicon_covers_the_usual_findings():
    for term in ("effusion", "pneumothorax", "consolidation", "pneumonia", "atelectasis", "cardiomegaly",
                 "edema", "oedema", "emphysema", "fibrosis", "fracture", "hernia", "infiltrate",
                 "infiltration", "mass", "nodule", "opacity", "lesion", "lung", "lobe", "heart", "rib",
                 "diaphragm", "mediastinum", "costophrenic", "hilum", "hilar", "cardiac", "enlarged heart",
                 "pleural effusion"):
        assert term in DEFAULT_TERMS, term


def test_tokens_overlapping_a_match_are_mapped_to_its_term():
    text = "Is there a pleural effusion?"
    # a sentencepiece-like split: leading spaces inside tokens, "effusion" in two pieces
    offsets = [(0, 2), (2, 8), (8, 10), (10, 18), (18, 23), (23, 27), (27, 28)]
    assert [text[s:e] for s, e in offsets] == ["Is", " there", " a", " pleural", " effu", "sion", "?"]
    got = tokens_for_matches(match_terms(text), offsets)
    assert got == {3: "pleural effusion", 4: "pleural effusion", 5: "pleural effusion"}


def test_special_tokens_with_empty_spans_never_match():
    text = "rib"
    got = tokens_for_matches(match_terms(text), [(0, 0), (0, 3), (3, 3)])
    assert got == {1: "rib"}


def test_a_space_only_token_next_to_a_match_is_not_mapped():
    text = "mass seen"
    got = tokens_for_matches(match_terms(text), [(0, 4), (4, 5), (5, 9)])
    assert got == {0: "mass"}
