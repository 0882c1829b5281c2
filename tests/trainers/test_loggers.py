"""Loggers: CSV round trips, fan-out, and the optional backends' errors."""
import builtins
import csv
import json

import pytest
import torch

from rlbench.loggers import Logger
from rlbench.testing import ListLogger
from rlbench.trainers import CSVLogger, MultiLogger, TensorboardLogger, WandbLogger, read_csv_log


def test_csv_round_trip_keeps_order_steps_and_exact_values(tmp_path):
    logger = CSVLogger(tmp_path, "run1", flush_every=2)
    values = [0.1, 1 / 3, 1e-12, -7.25, 123456789.125]
    for i, v in enumerate(values):
        logger.log_scalar("loss", v, step=i * 10)
    logger.log_scalar("eval/return", torch.tensor(9.5), step=40)  # 0-d tensor accepted
    logger.log_scalars({"a": 1, "b": 2.5}, step=50)
    logger.close()
    back = read_csv_log(tmp_path / "run1")
    assert back["loss"] == [(i * 10, v) for i, v in enumerate(values)]  # repr() round-trips floats exactly
    assert back["eval/return"] == [(40, 9.5)]
    assert back["a"] == [(50, 1.0)] and back["b"] == [(50, 2.5)]
    with open(logger.path) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["step", "name", "value"] and len(rows) == 1 + len(values) + 3


def test_csv_appends_when_reopened_and_hparams_merge(tmp_path):
    a = CSVLogger(tmp_path, "r")
    a.log_scalar("x", 1.0, 1)
    a.log_hparams({"lr": 1e-3, "layers": (64, 64), "device": torch.device("cpu")})
    a.close()
    b = CSVLogger(tmp_path, "r")  # a resumed run continues the same file, header written once
    b.log_scalar("x", 2.0, 2)
    b.log_hparams({"seed": 3})
    b.close()
    assert read_csv_log(b.path) == {"x": [(1, 1.0), (2, 2.0)]}
    hp = json.loads((tmp_path / "r" / "hparams.json").read_text())
    assert hp == {"lr": 1e-3, "layers": [64, 64], "device": "device(type='cpu')", "seed": 3}


def test_csv_flushes_on_schedule(tmp_path):
    logger = CSVLogger(tmp_path, "r", flush_every=3)
    for i in range(3):
        logger.log_scalar("x", i, i)
    assert read_csv_log(logger.path)["x"] == [(0, 0.0), (1, 1.0), (2, 2.0)]  # on disk without close()
    logger.close()


def test_csv_errors(tmp_path):
    logger = CSVLogger(tmp_path, "r")
    with pytest.raises(TypeError, match=r"log_scalar\('bad'\): expected a number or a one-element tensor"):
        logger.log_scalar("bad", torch.ones(3), 0)
    logger.close()
    with pytest.raises(RuntimeError, match="is closed"):
        logger.log_scalar("x", 1.0, 0)
    with pytest.raises(ValueError, match="exp_name must be a plain directory name"):
        CSVLogger(tmp_path, "a/b")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a CSVLogger file"):
        read_csv_log(tmp_path / "other.csv")


def test_loggers_follow_the_protocol(tmp_path):
    csv_logger = CSVLogger(tmp_path, "p")
    assert isinstance(csv_logger, Logger) and isinstance(MultiLogger(ListLogger()), Logger)
    csv_logger.close()


def test_multilogger_fans_out_and_skips_missing_methods(tmp_path):
    a, c = ListLogger(), CSVLogger(tmp_path, "m")
    both = MultiLogger(a, c)
    both.log_scalar("loss", 0.5, 1)
    both.log_scalars({"loss": 0.25, "ret": 3.0}, 2)
    both.log_hparams({"lr": 0.1})  # ListLogger has none: skipped
    both.close()
    assert a.rows == [("loss", 0.5, 1), ("loss", 0.25, 2), ("ret", 3.0, 2)]
    assert read_csv_log(c.path) == {"loss": [(1, 0.5), (2, 0.25)], "ret": [(2, 3.0)]}
    with pytest.raises(TypeError, match=r"logger #1 \(int\) has no log_scalar"):
        MultiLogger(a, 3)


def _hide(monkeypatch, *names):
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.split(".")[0] in names or name.startswith("torch.utils.tensorboard"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)


def test_optional_backends_say_which_extra_to_install(tmp_path, monkeypatch):
    _hide(monkeypatch, "tensorboard", "wandb")
    with pytest.raises(ImportError, match=r"pip install rlbench\[tensorboard\]"):
        TensorboardLogger(tmp_path, "tb")
    with pytest.raises(ImportError, match=r"pip install rlbench\[wandb\]"):
        WandbLogger(tmp_path, "wb")


def test_tensorboard_logger_writes_events(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorboardLogger(tmp_path, "tb")
    for i in range(3):
        logger.log_scalar("loss", 1.0 / (i + 1), step=i)
    logger.log_hparams({"lr": 0.1})
    logger.close()
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    events = acc.Scalars("loss")
    assert [e.step for e in events] == [0, 1, 2]
    assert [e.value for e in events] == pytest.approx([1.0, 0.5, 1 / 3])


def test_wandb_logger_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = WandbLogger(tmp_path, "wb", mode="offline")
    logger.log_scalars({"loss": 0.5, "ret": 2.0}, step=1)
    logger.log_hparams({"lr": 0.1})
    assert logger.run.config["lr"] == 0.1
    logger.close()
    assert any((tmp_path / "wandb").glob("offline-run-*"))
    with pytest.raises(ValueError, match="mode must be"):
        WandbLogger(tmp_path, "wb", mode="cloud")


def test_csv_logger_takes_torchrls_exp_name_and_log_dir(tmp_path, monkeypatch):
    # issue 13 item 21: TorchRL writes CSVLogger(exp_name, log_dir=...); rlbench's CSVLogger(log_dir, exp_name) stays
    spelled = [CSVLogger("exp", log_dir=tmp_path / "a"), CSVLogger(exp_name="exp", log_dir=tmp_path / "b"),
               CSVLogger(log_dir=tmp_path / "c", exp_name="exp"), CSVLogger(tmp_path / "d", "exp"),
               CSVLogger(tmp_path / "e", exp_name="exp")]
    for logger, parent in zip(spelled, "abcde"):
        assert logger.run_dir == tmp_path / parent / "exp"
        logger.log_scalar("x", 1.0, step=3)
        logger.close()
        assert read_csv_log(logger.path) == {"x": [(3, 1.0)]}
    assert CSVLogger(tmp_path / "f").run_dir == tmp_path / "f" / "run"  # rlbench's default exp_name
    monkeypatch.chdir(tmp_path)
    assert CSVLogger(exp_name="exp").run_dir.resolve() == tmp_path / "csv_logs" / "exp"  # TorchRL's default folder
    with pytest.raises(TypeError, match=r"CSVLogger: log_dir given twice"):
        CSVLogger("a", "b", log_dir=tmp_path)
    with pytest.raises(TypeError, match=r"CSVLogger: exp_name given twice \('a' and exp_name='b'\) beside log_dir="):
        CSVLogger("a", exp_name="b", log_dir=tmp_path)
    with pytest.raises(TypeError, match=r"CSVLogger: missing where to log"):
        CSVLogger()
