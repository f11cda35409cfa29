"""The ProX program language and its executor (the only place that interprets a program)."""
