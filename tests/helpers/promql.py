"""Metric names referenced by PromQL expressions (dashboard targets, alert rules), and where to find them.

A small lexer rather than a full parser: it removes everything that cannot be a metric name
(strings, label matchers, ranges, grouping label lists, Grafana variables) and keeps the
identifiers that are neither functions nor keywords. Unknown function names raise, so a typo
in a dashboard does not slip through as "no metric used".
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import yaml

FUNCTIONS = frozenset("""
abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp clamp_max
clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year days_in_month deg delta deriv
exp floor histogram_avg histogram_count histogram_fraction histogram_quantile histogram_stddev
histogram_stdvar histogram_sum holt_winters idelta increase irate label_join label_replace last_over_time
ln log10 log2 mad_over_time max_over_time min_over_time minute month pi predict_linear present_over_time
quantile_over_time rad rate resets round scalar sgn sin sinh sort sort_by_label sort_by_label_desc
sort_desc sqrt stddev_over_time stdvar_over_time sum_over_time tan tanh time timestamp vector year
start end
""".split())
AGGREGATIONS = frozenset(
    "sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk limit_ratio".split()
)
KEYWORDS = frozenset("and or unless bool offset atan2 inf nan".split())

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[[^\]]*\]\]")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE)
_BARE_MODIFIER = re.compile(r"\b(?:group_left|group_right)\b", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w:])(?:0x[0-9a-f]+|\d[\w.]*(?:e[+-]?\d+)?)", re.IGNORECASE)
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Names of the series a PromQL expression selects; raises ValueError on unknown functions."""
    text = _STRING.sub(" ", expr)
    text = _GRAFANA_VARIABLE.sub("1m", text)  # `$__rate_interval` sits where a duration goes
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    text = _BARE_MODIFIER.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group()
        if word.lower() in KEYWORDS:
            continue
        if text[match.end():].lstrip().startswith("("):
            if word not in FUNCTIONS and word not in AGGREGATIONS:
                raise ValueError(f"unknown PromQL function {word!r} in {expr!r}")
        else:
            names.add(word)
    return names


def dashboard_exprs(dashboard: dict) -> Iterator[tuple[str, str]]:
    """(panel title, expr) for every target of every panel, rows' nested panels included."""
    for panel in dashboard.get("panels", []):
        for nested in [panel, *panel.get("panels", [])]:
            for target in nested.get("targets", []):
                if target.get("expr"):
                    yield nested.get("title", "?"), target["expr"]


def rule_exprs(rules_document: dict) -> Iterator[tuple[str, str]]:
    """(alert or record name, expr) for every rule of a Prometheus rules file."""
    for group in rules_document.get("groups", []):
        for rule in group.get("rules", []):
            yield rule.get("alert") or rule["record"], rule["expr"]


def recorded_names(rules_document: dict) -> set[str]:
    return {rule["record"] for group in rules_document.get("groups", []) for rule in group["rules"] if "record" in rule}


def load_dashboards(directory: Path) -> dict[Path, dict]:
    return {path: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def load_rules(directory: Path) -> dict[Path, dict]:
    return {path: yaml.safe_load(path.read_text()) for path in sorted(directory.glob("*.yml"))}


# Sample suffixes a family of each type exports (the Python client's `_created` is never queried).
_FAMILY_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count", "")}
_TYPE_LINE = re.compile(r"#\s*TYPE\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s+(\w+)")


def exposed_names(exposition: str) -> set[str]:
    """Series names a Prometheus text exposition (a live /metrics scrape) exports.

    Samples, plus the families declared by `# TYPE` lines: a labelled metric that has not been
    touched yet (no dead letter so far, say) is declared but has no sample.
    """
    names = set()
    for line in exposition.splitlines():
        declared = _TYPE_LINE.match(line)
        if declared:
            family, kind = declared.groups()
            names.update(family + suffix for suffix in _FAMILY_SUFFIXES.get(kind, ("",)))
        elif line and not line.startswith("#"):
            names.add(_IDENTIFIER.match(line).group())
    return names
