"""The progress line's rate counts only what was done while it was shown."""
import io

import prox.common.progress as progress
from prox.common.progress import Progress


def test_the_rate_starts_at_the_first_update_not_at_zero(monkeypatch):
    clock = iter([10.0, 12.0, 14.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    out = io.StringIO()
    shown = Progress("refine", total=300, stream=out)
    shown.update(13)          # 13 already out when the display started: no rate yet
    shown.update(53, force=True)
    shown.update(93, "refined 50", force=True)
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("13/300")
    assert lines[1].endswith("53/300 20.0/s")
    assert lines[2].endswith("93/300 20.0/s refined 50")
