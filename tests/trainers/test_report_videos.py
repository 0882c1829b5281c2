"""write_report shows the run's videos: <video> elements with paths relative to the report, names escaped."""
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import torch

from rlbench.trainers import CSVLogger, TrainResults, write_report
from rlbench.trainers.report import report_videos


class _Videos(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs, self.captions, self._in_caption = [], [], False

    def handle_starttag(self, tag, attrs):
        if tag == "video":
            attrs = dict(attrs)
            assert "controls" in attrs
            self.srcs.append(attrs["src"])
        self._in_caption = tag == "figcaption"

    def handle_data(self, data):
        if self._in_caption:
            self.captions.append(data)
            self._in_caption = False


def _results(run_dir=None, videos=()):
    return TrainResults("ppo", "CartPole-v1", 1.0, 0.0, 1, 10, 1.0, 1.0,
                        run_dir=None if run_dir is None else str(run_dir), videos=list(videos))


def _parse(html):
    parser = _Videos()
    parser.feed(html)
    return parser


def test_report_finds_the_csv_logger_videos_of_the_run(tmp_path):
    run_dir = tmp_path / "ppo-run"
    logger = CSVLogger(run_dir, "logs")  # as RunTracker makes it
    for step in (10, 20):
        logger.log_video("eval/video", torch.zeros(2, 8, 8, 3, dtype=torch.uint8), step=step)
    logger.close()
    report = write_report(run_dir / "report.html", _results(run_dir))
    parsed = _parse(report.read_text())
    assert parsed.srcs == ["logs/videos/eval_video_000000010.mp4", "logs/videos/eval_video_000000020.mp4"]
    assert parsed.captions == ["eval_video_000000010.mp4", "eval_video_000000020.mp4"]
    assert all((report.parent / unquote(src)).is_file() for src in parsed.srcs)


def test_listed_videos_relative_paths_and_escaping(tmp_path):
    run_dir = tmp_path / "run"
    odd = run_dir / "clips" / 'a "<b>" & #1?.mp4'
    odd.parent.mkdir(parents=True)
    odd.write_bytes(b"")
    elsewhere = tmp_path / "reports" / "r.html"
    elsewhere.parent.mkdir()
    results = _results(run_dir, videos=["clips/" + odd.name, str(run_dir / "missing.mp4")])
    html = write_report(elsewhere, results).read_text()
    assert '"<b>"' not in html and "&quot;&lt;b&gt;&quot; &amp; #1?.mp4</figcaption>" in html  # escaped caption
    parsed = _parse(html)
    assert len(parsed.srcs) == 1  # the missing file is left out
    (src,) = parsed.srcs
    assert src.startswith("../run/clips/") and "#" not in src and "?" not in src and " " not in src
    assert (elsewhere.parent / unquote(src)).resolve() == odd.resolve()
    assert parsed.captions == [odd.name]


def test_no_videos_no_section(tmp_path):
    html = write_report(tmp_path / "r.html", _results(tmp_path)).read_text()
    assert "<video" not in html and "Videos" not in html
    assert report_videos(_results()) == []


def test_results_keep_videos_as_listed():
    r = _results("x", videos=["a.mp4"])
    assert r.videos == ["a.mp4"] and _results().videos == []
    assert Path("x") / r.videos[0] == Path("x/a.mp4")
