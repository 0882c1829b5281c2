"""ProgressBar (rlbench/trainers/progress.py): counting, postfix formatting, throttled redraws, disabled bars."""
import io

from rlbench.trainers.progress import ProgressBar


def test_counts_frames_and_formats_the_postfix():
    out = io.StringIO()
    bar = ProgressBar(total=200, desc="dqn", file=out, min_interval=0.0)
    bar.update(50, episode_return=21.456789, loss=None, steps=7)
    bar.update(30)
    assert bar.n == 80
    bar.close()
    text = out.getvalue()
    assert "dqn" in text and "80.0/200" in text and "40%" in text  # unit_scale=True: 80.0
    assert "episode_return=21.46, steps=7" in text  # floats to 4 significant digits, ints as they are
    assert "loss" not in text  # None values are ignored
    assert bar.bar is None and bar.n == 0
    bar.close()  # a second close does nothing


def test_postfix_changes_wait_for_min_interval_and_close_draws_the_last_one():
    out = io.StringIO()
    bar = ProgressBar(total=10, file=out, min_interval=3600.0)
    bar.update(1, loss=1.0)  # the first change is drawn at once
    bar.update(1, loss=2.0)  # within the interval: kept, not drawn
    assert bar.bar.postfix == "loss=1"
    with bar:
        pass  # leaving the context closes the bar, drawing the kept value
    assert "loss=2" in out.getvalue() and bar.bar is None


def test_disabled_bar_is_a_no_op():
    bar = ProgressBar(total=10, disable=True)
    bar.update(5, loss=1.0)
    assert bar.bar is None and bar.n == 0
    bar.close()
