"""write_report (rlbench/trainers/report.py): HTML escaping, names with dollar signs, the curve figure title."""
import base64
import re

import pytest

from rlbench.trainers import TrainResults, write_report


def test_report_escapes_strings(tmp_path):
    r = TrainResults("<b>x</b>", "<script>alert(1)</script>", 1.0, 0.0, 2, 10, 1.0, 1.0,
                     curve=[{"frames": 10, "train_time": 1.0, "eval_return": 1.0, "eval_std": 0.0}],
                     config={"env": "<script>"})
    html = write_report(tmp_path / "r.html", r).read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize("algo, env", [("$$", "CartPole-v1"), ("dqn", "my$}{$env"), ("x", r"$\foo$-v0"),
                                       ("a$b$c", "$x^2$ and $"), ("cost $5", r"\$ \alpha")])
def test_report_draws_names_with_dollar_signs_as_plain_text(tmp_path, algo, env):
    # issue 13 item 12: matplotlib read "$...$" in the title as math text (an odd count raised ValueError)
    r = TrainResults(algo, env, 1.0, 0.0, 2, 10, 1.0, 1.0, train_curve=[(5, 0.5)],
                     curve=[{"frames": 10, "train_time": 1.0, "eval_return": 1.0, "eval_std": 0.0}])
    html = write_report(tmp_path / "r.html", r).read_text()
    png = base64.b64decode(re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html).group(1))
    assert png.startswith(b"\x89PNG")
    import html as html_lib

    assert f"<h1>{html_lib.escape(algo)} on {html_lib.escape(env)}</h1>" in html  # the page keeps HTML escaping


def test_report_title_is_the_names_verbatim():
    from rlbench.trainers.report import _curve_figure

    r = TrainResults("a$b", "$x$", 1.0, 0.0, 2, 10, 1.0, 1.0,
                     curve=[{"frames": 10, "train_time": 1.0, "eval_return": 1.0, "eval_std": 0.0}])
    title = _curve_figure(r).axes[0].title
    assert title.get_text() == "a$b on $x$"  # drawn as written: no math, no backslashes
