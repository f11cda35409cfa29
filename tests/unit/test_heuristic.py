"""The heuristic backend writes valid ProX programs that remove menus and keep articles, in any script."""
import numpy as np
import pytest

from prox.executor import execute_document, parse_program
from prox.models.backends import load_chunk_writer, load_doc_writer
from prox.models.heuristic import HeuristicChunkWriter, HeuristicDocWriter
from prox.executor.program import removal_runs
from prox.models.heuristic.writers import line_program

MENU = ["Home", "About us", "Products", "Blog", "Contact", "Login", "Search"]
FOOTER = ["Privacy Policy", "Terms of Use", "Cookie settings", "© 2024 Example Corp. All rights reserved.",
          "Facebook", "Twitter", "LinkedIn"]
ENGLISH = [
    "The city council approved the new budget on Tuesday after a long debate about public transport funding.",
    "Several members argued that the plan does not do enough for the outer districts, where buses are rare.",
    "The mayor said that the first new lines would open next spring, and that more would follow in the autumn.",
    "Residents will be able to comment on the route maps at public meetings during the coming weeks.",
]
GERMAN = [
    "Der Stadtrat hat am Dienstag nach einer langen Debatte über den öffentlichen Verkehr den neuen Haushalt beschlossen.",
    "Mehrere Mitglieder kritisierten, dass der Plan für die äußeren Bezirke nicht genug tut, weil dort kaum Busse fahren.",
    "Die Bürgermeisterin sagte, dass die ersten neuen Linien im nächsten Frühjahr eröffnet werden sollen.",
    "Die Bürger können die Pläne in den kommenden Wochen bei öffentlichen Versammlungen kommentieren.",
]
CHINESE = [
    "市议会周二在就公共交通资金进行了长时间辩论之后，批准了新的预算方案，并决定增加公交线路。",
    "几位议员认为，这个计划对外围地区的帮助还不够，因为那里的公交车非常少，居民出行很不方便。",
    "市长表示，第一批新线路将在明年春天开通，其余线路也会在秋天陆续投入使用，以满足市民需求。",
    "居民可以在未来几周的公开会议上，对线路图提出意见和建议，相关部门将认真研究这些意见。",
]
ARABIC = [
    "وافق مجلس المدينة يوم الثلاثاء على الميزانية الجديدة بعد نقاش طويل حول تمويل النقل العام في المدينة.",
    "وقال عدد من الأعضاء إن الخطة لا تفعل ما يكفي للأحياء البعيدة، حيث الحافلات نادرة جدا منذ سنوات.",
    "وأعلن رئيس البلدية أن الخطوط الجديدة الأولى ستفتح في الربيع المقبل، وأن خطوطا أخرى ستتبعها في الخريف.",
    "وسيتمكن السكان من التعليق على خرائط الخطوط في اجتماعات عامة خلال الأسابيع القادمة في مركز المدينة.",
]


def page(article: list[str]) -> tuple[str, range]:
    """A synthetic web page: title, menu, article, footer; and the line range of the article."""
    header = ["Example News | Local politics"] + MENU
    article = article + [article[0] + " " + article[1], article[2] + " " + article[3]]
    lines = header + article + FOOTER
    return "\n".join(lines), range(len(header), len(header) + len(article))


@pytest.fixture(scope="module")
def chunk_writer():
    return HeuristicChunkWriter()


@pytest.fixture(scope="module")
def doc_writer():
    return HeuristicDocWriter()


def kept_lines(text: str, program: str) -> list[str]:
    execution = execute_document(text, chunk_program=program)
    assert not execution.report.errors, execution.report.errors
    return (execution.text or "").split("\n")


@pytest.mark.parametrize("article", [ENGLISH, GERMAN, CHINESE, ARABIC], ids=["en", "de", "zh", "ar"])
def test_chunk_program_keeps_the_article_and_removes_menu_and_footer(chunk_writer, article):
    text, article_lines = page(article)
    (decision,) = chunk_writer.write([text])
    lines = text.split("\n")
    assert decision.chunk_ranges == [(0, len(lines) - 1)]
    assert not parse_program(decision.program, level="chunk").errors
    kept = kept_lines(text, decision.program)
    article_kept = [line for line in kept if line in lines[article_lines.start : article_lines.stop]]
    assert len(article_kept) >= len(article_lines) - 1, decision.program
    boilerplate_kept = [line for line in kept if line in MENU + FOOTER]
    assert len(boilerplate_kept) <= 2, boilerplate_kept


def test_an_article_alone_is_kept_whole(chunk_writer):
    text = "\n".join(ENGLISH)
    (decision,) = chunk_writer.write([text])
    assert decision.program == "keep_chunk()"


def test_remove_runs_and_program_use_global_inclusive_line_numbers():
    removed = np.array([True, True, False, True, False, False, True])
    assert removal_runs(removed) == [(0, 1), (3, 3), (6, 6)]
    lines = ["a"] * 7
    assert line_program(lines, ~removed) == "remove_lines(0, 1)\nremove_lines(3, 3)\nremove_lines(6, 6)"
    assert line_program(lines, np.ones(7, dtype=bool)) == "keep_chunk()"


def test_glued_read_more_is_normalized_away_safely():
    sentence = "The council approved the budget after a long debate on transport funding."
    lines = ["Home", sentence + " Read more »"]
    program = line_program(lines, np.array([False, True]))
    assert program.split("\n") == ["remove_lines(0, 0)", "normalize(' Read more »', '')"]
    assert parse_program(program).errors == []
    assert kept_lines("\n".join(lines + [sentence]), program)[0] == sentence


def longer(article: list[str]) -> list[str]:
    """A short whole news item (about 850 characters, 350 in Chinese): the four sentences, then two paragraphs
    of two sentences each (as the synthetic page has)."""
    sep = "" if article is CHINESE else " "
    return article + [article[0] + sep + article[1], article[2] + sep + article[3]]


@pytest.mark.parametrize("article", [ENGLISH, GERMAN, CHINESE, ARABIC], ids=["en", "de", "zh", "ar"])
def test_doc_writer_keeps_clean_articles_in_any_script(doc_writer, article):
    (decision,) = doc_writer.write(["\n".join(longer(article))])
    assert decision.program == "keep_doc()"
    assert 0.5 <= decision.keep_prob <= 1.0


@pytest.mark.parametrize("article", [ENGLISH, GERMAN, CHINESE, ARABIC], ids=["en", "de", "zh", "ar"])
def test_doc_writer_drops_a_one_sentence_fragment(doc_writer, article):
    fragment, whole = doc_writer.write([article[0], "\n".join(longer(article))])
    assert fragment.program == "drop_doc()" and fragment.keep_prob < whole.keep_prob


def test_doc_writer_drops_link_lists_and_boilerplate(doc_writer):
    teasers = "\n".join(f"{title} | Read more »" for title in (
        "Ten tips for your garden", "Best laptops of the year", "How to save on energy bills",
        "Our top recipes for autumn", "Win a trip to Paris", "Why cats sleep so much", "The new phone is here"))
    boilerplate = "\n".join(MENU + FOOTER)
    article, *others = doc_writer.write(["\n".join(longer(ENGLISH)), teasers, boilerplate])
    assert article.program == "keep_doc()"
    assert all(d.program == "drop_doc()" and d.keep_prob < article.keep_prob for d in others)


def test_keep_prob_is_a_strictly_increasing_calibration_of_the_trees_score(doc_writer):
    raw = np.linspace(-8, 8, 101)
    calibrated = doc_writer.scorer.calibrated(raw)
    assert np.all(np.diff(calibrated) > 0) and doc_writer.scorer.slope > 0
    assert 0.0 < calibrated[0] < 0.5 < calibrated[-1] < 1.0


def test_doc_writer_scores_keyword_spam_below_prose(doc_writer):
    spam = "\n".join(["cheap shoes buy cheap shoes online best cheap shoes sale cheap shoes discount"] * 8)
    prose, spam_decision = doc_writer.write(["\n".join(ENGLISH), spam])
    assert spam_decision.keep_prob < prose.keep_prob
    assert not parse_program(spam_decision.program, level="doc").errors


def test_doc_program_follows_the_threshold():
    text = "\n".join(longer(ENGLISH))
    probability = HeuristicDocWriter().write([text])[0].keep_prob
    assert HeuristicDocWriter(threshold=probability + 1e-9).write([text])[0].program == "drop_doc()"
    assert HeuristicDocWriter(threshold=probability).write([text])[0].program == "keep_doc()"


def test_writers_load_by_backend_name_and_report_their_model():
    doc, chunk = load_doc_writer("heuristic"), load_chunk_writer("heuristic")
    assert (doc.info.name, doc.info.backend) == ("prox_doc", "heuristic")
    assert (chunk.info.name, chunk.info.backend) == ("prox_chunk", "heuristic")
    assert doc.info.version == chunk.info.version and len(doc.info.version) == 12


@pytest.mark.parametrize("text", ["", "\n\n", "x", "Home\nLogin"])
def test_degenerate_pages_get_valid_programs(chunk_writer, doc_writer, text):
    (chunk,) = chunk_writer.write([text])
    (doc,) = doc_writer.write([text])
    assert not parse_program(chunk.program).errors and not parse_program(doc.program, level="doc").errors
    assert chunk.chunk_ranges == [(0, text.count("\n"))]


def test_writers_are_thread_safe(chunk_writer):
    from concurrent.futures import ThreadPoolExecutor

    texts = [page(article)[0] for article in (ENGLISH, GERMAN, CHINESE, ARABIC)] * 4
    expected = chunk_writer.write(texts)
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda t: chunk_writer.write([t])[0], texts)) == expected


def test_an_unsure_page_is_rescued_at_half_the_threshold_rather_than_emptied():
    from prox.models.heuristic.writers import kept_lines as keep_mask

    lines = ["one two three four five six seven eight", "Home", "Login"]
    unsure = np.array([0.2, 0.01, 0.01])
    assert keep_mask(lines, unsure, 0.3).tolist() == [True, False, False]
    assert keep_mask(lines, np.array([0.1, 0.01, 0.01]), 0.3).tolist() == [False, False, False]
    assert keep_mask(lines, np.array([0.9, 0.2, 0.2]), 0.3).tolist() == [True, False, False]


def test_expected_f1_keeps_the_likely_lines_and_weighs_them_by_words():
    from prox.models.heuristic.writers import expected_f1_lines

    words = np.array([40.0, 1.0, 1.0, 30.0, 0.0])
    probabilities = np.array([0.95, 0.05, 0.1, 0.9, 0.5])
    assert expected_f1_lines(probabilities, words).tolist()[:4] == [True, False, False, True]
    # An unsure long line goes when the sure content already reaches a higher expected F1 without it.
    assert not expected_f1_lines(np.array([0.95, 0.2]), np.array([50.0, 50.0]))[1]
    assert expected_f1_lines(np.array([0.95, 0.6]), np.array([50.0, 50.0]))[1]
    assert expected_f1_lines(np.zeros(0), np.zeros(0)).tolist() == []


def test_a_fixed_threshold_overrides_the_default_decision():
    text, _ = page(ENGLISH)
    writer = HeuristicChunkWriter(threshold=1.01)
    assert writer.threshold == 1.01
    # Nothing reaches the threshold: the rescue retries at half of it, which still keeps nothing here.
    assert writer.write([text])[0].program.startswith("remove_lines(0, ")
    assert HeuristicChunkWriter().threshold is None


def test_unsure_paragraphs_next_to_kept_content_and_at_the_page_edges_are_kept():
    from prox.models.heuristic.writers import keep_adjacent_paragraphs, keep_edge_paragraphs

    kept = np.array([False, False, True, True, False, False])
    probabilities = np.array([0.1, 0.4, 0.9, 0.9, 0.2, 0.5])
    words = np.array([20.0, 20.0, 20.0, 20.0, 20.0, 20.0])
    paragraph = np.array([True, True, True, True, True, True])
    assert keep_adjacent_paragraphs(kept, probabilities, words, paragraph).tolist() == [
        False, True, True, True, False, False]
    assert keep_edge_paragraphs(np.array([True, True, False]), np.array([9.0, 9.0, 30.0]),
                                np.array([False, False, True])).tolist() == [True, True, True]


def test_a_page_with_no_paragraph_and_no_likely_content_is_emptied_and_dropped(chunk_writer):
    from prox.models.heuristic.writers import has_main_content

    assert not has_main_content(np.array([0.1, 0.29]), np.array([False, False]))
    assert has_main_content(np.array([0.1, 0.31]), np.array([False, False]))
    assert has_main_content(np.array([0.1, 0.1]), np.array([False, True]))  # a paragraph: never emptied
    links = "\n".join(["Home", "Log in", "Sign up", "Privacy policy", "Terms of use", "Contact us", "© 2024 Example",
                       "Cookie settings", "Facebook", "Twitter", "Instagram", "Newsletter"])
    program = chunk_writer.write([links])[0].program
    assert program == "remove_lines(0, 11)"
    assert execute_document(links, None, program).dropped


def test_doc_features_are_finite_on_any_text_and_sample_long_documents_evenly():
    from prox.models.heuristic.features import DOC_FEATURES, DOC_TOKEN_CHARS, _token_sample, doc_features

    for text in ["", "\n\n", "x", "\n".join(CHINESE), "\n".join(ARABIC), "€ 12,99 | 3 × 4 = 12\t\r\n•"]:
        features = doc_features(text)
        assert features.shape == (len(DOC_FEATURES),) and np.all(np.isfinite(features))
    long = " ".join(f"w{i}" for i in range(20_000))
    sample = _token_sample(long)
    assert len(sample) <= DOC_TOKEN_CHARS and sample.split()[0] == "w0" and sample.split()[-1] == "w19999"
    assert all(token.startswith("w") and token[1:].isdigit() for token in sample.split())  # no word cut

