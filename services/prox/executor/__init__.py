"""The ProX program language and its executor (the only place that interprets a program).

Programs are model output, i.e. data: they are parsed with `ast` and never evaluated.
"""
from .execute import Execution, ExecutorOptions, execute_document
from .program import ParsedProgram, error_kind, parse_program
from .textindex import count_words

__all__ = [
    "Execution", "ExecutorOptions", "ParsedProgram", "count_words", "error_kind", "execute_document",
    "parse_program",
]
