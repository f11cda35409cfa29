"""`prox eval` metrics on small hand-made gold/prediction files (expected numbers worked out by hand)."""
import gzip
import json

import pytest

from prox.cli.main import main
from prox.eval.metrics import (Counts, balanced_accuracy, kept_input_lines, precision_recall_f1, roc_auc,
                               word_counts)

GOLD = [
    {"id": "a", "text": "Home\nPara one is here.\nPara two is here.\nFooter", "line_labels": [0, 1, 1, 0],
     "gold": "Para one is here.\nPara two is here.", "gold_coverage": 1.0, "meta": {"page_type": "article"}},
    {"id": "b", "text": "Menu\nA post with words.\nReply", "line_labels": [0, 1, 0],
     "gold": "A post with words.", "gold_coverage": 0.9, "meta": {"page_type": "forum"}},
    {"id": "c", "text": "Login\nSign up", "line_labels": [0, 0], "gold": "", "gold_coverage": 0.0,
     "meta": {"page_type": "article"}},
    {"id": "d", "text": "Loading...", "line_labels": [0], "gold": "Rendered by script.", "gold_coverage": 0.5,
     "meta": {"page_type": "article"}},
    {"id": "k1", "text": "good text", "label": "1"},
    {"id": "k2", "text": "good text too", "label": 1},
    {"id": "k3", "text": "spam spam", "label": "0"},
    {"id": "k4", "text": "more spam", "label": 0},
]
PRED = [
    {"id": "a", "text": "Home\nPara one is here."},  # lines: tp 1, fp 1, fn 1
    {"id": "b", "text": "A post with word"},  # edited line maps back fuzzily
    {"id": "k1", "text": "good text", "keep_prob": 0.9},
    {"id": "k2", "text": None, "keep_prob": 0.4},
    {"id": "k3", "keep_prob": 0.2},
    {"id": "k4", "text": "more spam", "keep_prob": 0.6},
]  # c: no row → dropped (right: its gold is empty); d: skipped (coverage 0.5)

WORD_F1_A = 8 / 13  # output {home, para, one, is, here}, gold 8 words, 4 shared: 2*4 / (2*4 + 1 + 4)
WORD_F1_B = 6 / 8  # {a, post, with, word} vs {a, post, with, words}: 2*3 / (2*3 + 1 + 1)


def write_jsonl(path, rows):
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return str(path)


@pytest.fixture()
def files(tmp_path):
    return write_jsonl(tmp_path / "gold.jsonl.gz", GOLD), write_jsonl(tmp_path / "pred.jsonl.gz", PRED)


def test_precision_recall_f1_conventions():
    assert precision_recall_f1(Counts(1, 1, 1)) == (0.5, 0.5, 0.5)
    assert precision_recall_f1(Counts(0, 0, 0)) == (1.0, 1.0, 1.0)  # nothing to keep, nothing kept
    assert precision_recall_f1(Counts(0, 0, 3)) == (0.0, 0.0, 0.0)  # dropped a page with content
    assert precision_recall_f1(Counts(0, 2, 0)) == (0.0, 0.0, 0.0)  # kept boilerplate of an empty page


def test_output_lines_map_back_exactly_then_fuzzily():
    assert kept_input_lines(["Reply", "text", "Reply"], ["text", "Reply"]) == [0, 1, 1]
    assert kept_input_lines(["a b c", "Share", "The long sentence here."], ["The long sentence"]) == [0, 0, 1]
    assert kept_input_lines(["x", "y"], ["something else entirely"]) == [0, 0]


def test_word_counts_split_cjk_by_character():
    assert word_counts("市长说", "市长") == Counts(2, 1, 0)
    assert word_counts(None, "two words") == Counts(0, 0, 2)


def test_balanced_accuracy_and_roc_auc():
    assert balanced_accuracy([1, 1, 0, 0], [1, 0, 0, 1]) == 0.5
    assert balanced_accuracy([1, 1, 1, 0], [1, 1, 1, 0]) == 1.0
    assert roc_auc([1, 1, 0, 0], [0.9, 0.4, 0.2, 0.6]) == 0.75  # 3 of 4 positive/negative pairs ordered
    assert roc_auc([1, 0], [0.5, 0.5]) == 0.5


def test_eval_cli_on_hand_made_files(files, tmp_path, capsys):
    gold, pred = files
    out_json, out_html = tmp_path / "out.json", tmp_path / "report.html"
    assert main(["eval", "--gold", gold, "--pred", pred, "--json", str(out_json), "--html", str(out_html)]) == 0
    summary = json.loads(out_json.read_text())
    lines = summary["lines"]
    assert lines["pages"] == 3 and lines["skipped_low_coverage"] == 1
    assert (lines["empty_gold_pages"], lines["empty_gold_dropped"]) == (1, 1)
    assert lines["line_f1_macro"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert lines["line_precision_macro"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert lines["line_f1_micro"] == pytest.approx(4 / 6)  # tp 2, fp 1, fn 1
    assert lines["word_f1_macro"] == pytest.approx((WORD_F1_A + WORD_F1_B + 1) / 3)
    assert lines["by_page_type"]["article"]["line_f1_macro"] == pytest.approx(0.75)
    assert lines["by_page_type"]["forum"]["line_f1_macro"] == pytest.approx(1.0)
    curve = {point["threshold"]: point for point in summary["keep"].pop("operating_curve")}
    assert summary["keep"] == {"documents": 4, "kept": 2, "balanced_accuracy": 0.5, "roc_auc": 0.75}
    # keep_prob: k1 0.9 (keep), k2 0.4 (keep), k3 0.2 (drop), k4 0.6 (drop)
    assert curve[0.3] == {"threshold": 0.3, "keep_rate": 0.75, "balanced_accuracy": 0.75, "kept_of_gold_keeps": 1.0}
    assert curve[0.5] == {"threshold": 0.5, "keep_rate": 0.5, "balanced_accuracy": 0.5, "kept_of_gold_keeps": 0.5}
    assert curve[0.7] == {"threshold": 0.7, "keep_rate": 0.25, "balanced_accuracy": 0.75, "kept_of_gold_keeps": 0.5}
    keep_rates = [curve[t]["keep_rate"] for t in sorted(curve)]
    assert keep_rates == sorted(keep_rates, reverse=True)  # a higher threshold never keeps more
    out = capsys.readouterr().out
    assert "article" in out and "operating curve" in out
    report = out_html.read_text()
    assert report.index("<h3>a (article)") < report.index("<h3>b (forum)")  # worst page first
    assert 'class="fp">Home</div>' in report and 'class="fn">Para two is here.</div>' in report


def test_eval_cli_runs_the_heuristic_backend_on_the_gold_inputs(files, tmp_path):
    gold, _ = files
    out_json = tmp_path / "out.json"
    assert main(["eval", "--gold", gold, "--backend", "heuristic", "--json", str(out_json)]) == 0
    summary = json.loads(out_json.read_text())
    assert summary["lines"]["pages"] == 3
    assert "roc_auc" in summary["keep"]  # the doc writer gives every document a keep score


def test_c4_line_rule_baseline_keeps_only_sentences_of_five_words_or_more():
    from prox.eval.baselines import FixedRuleWriter, c4_line_rule_program

    text = "Home\nThis line is a sentence.\nToo short.\nNo terminal punctuation here at all\nIt ends with a quote \""
    assert c4_line_rule_program(text) == "remove_lines(0, 0)\nremove_lines(2, 3)"
    (decision,) = FixedRuleWriter(c4_line_rule_program).write([text])
    assert decision.chunk_ranges == [(0, 4)]
