"""A LazyMemmapStorage whose writer is SIGKILLed mid-extend reopens with whole rows and consistent counters.

Issue 13, item 3. The child fills a 20-row storage (every row of write ``w`` holds ``w`` in every key),
then is killed by a patched ``Tensor.copy_`` at the k-th copy of an extend that wraps around: between
two keys, inside the second wrapped chunk, or after the data and before the counters.
"""
import os
import signal
import subprocess
import sys

import pytest
import torch
from tensordict import TensorDict

from rlbench.buffers import LazyMemmapStorage, ReplayBuffer

CHILD = r"""
import os, signal, sys
import torch
from tensordict import TensorDict
from rlbench.buffers import LazyMemmapStorage, ReplayBuffer

rb = ReplayBuffer(storage=LazyMemmapStorage(20, scratch_dir=sys.argv[1]))


def rows(w, n):
    v = torch.full((n, 3), float(w))
    return TensorDict({"a": v, "b": v.clone(), "c": {"d": v.clone()}}, [n])


for w in (1, 2, 3):
    rb.extend(rows(w, 8))  # 24 rows into 20: full, cursor at 4
kill_at, calls, copy = int(sys.argv[2]), [0], torch.Tensor.copy_


def copy_(self, src, *args, **kwargs):
    calls[0] += 1
    if calls[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return copy(self, src, *args, **kwargs)


torch.Tensor.copy_ = copy_
rb.extend(rows(4, 18))  # rows 4..19 then 0..1: two chunks
print("not killed", calls[0], flush=True)
"""


def whole_rows(storage):
    data = storage.get(slice(None))
    keys = [data["a"], data["b"], data["c", "d"]]
    ids = keys[0][:, 0]
    return ids, all(bool((k == ids.unsqueeze(-1)).all()) for k in keys)


@pytest.mark.parametrize("kill_at", [2, 4, 5, 50])  # between keys, between chunks, in chunk 2, never
def test_killed_extend_reopens_with_whole_rows(tmp_path, kill_at):
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "mm"), str(kill_at)], capture_output=True,
                          text=True, timeout=120)
    killed = proc.returncode == -signal.SIGKILL
    assert killed or "not killed" in proc.stdout, proc.stderr
    s = LazyMemmapStorage.load(tmp_path / "mm")
    ids, whole = whole_rows(s)
    assert whole, f"torn rows after a kill at copy {kill_at}: {ids.tolist()}"
    assert set(ids.tolist()) <= {1.0, 2.0, 3.0, 4.0}
    # at most the rows of the interrupted extend are lost, and the counters agree with each other
    assert 20 - 18 <= len(s) <= 20 and (s.write_cursor == len(s) if len(s) < 20 else 0 <= s.write_cursor < 20)
    if not killed:
        assert len(s) == 20 and s.write_cursor == 2 and ids.tolist().count(4.0) == 18
    # the recovered storage goes on working: a buffer on it writes at its cursor and keeps rows whole
    rb = ReplayBuffer.loads(tmp_path / "mm")
    rb.extend(TensorDict({"a": torch.full((5, 3), 9.0), "b": torch.full((5, 3), 9.0),
                          "c": {"d": torch.full((5, 3), 9.0)}}, [5]))
    ids, whole = whole_rows(rb.storage)
    assert whole and ids.tolist().count(9.0) == 5


def test_counters_are_one_word(tmp_path):
    """Length and cursor are written together (one aligned int64), so a kill cannot split them."""
    s = LazyMemmapStorage(10, scratch_dir=tmp_path)
    rb = ReplayBuffer(storage=s)
    rb.extend(TensorDict({"x": torch.arange(13.0)}, [13]))
    assert os.path.getsize(tmp_path / "counters.memmap") == 8
    word = int(torch.from_file(str(tmp_path / "counters.memmap"), size=1, dtype=torch.int64)[0])
    assert (word >> 32, word & 0xFFFFFFFF) == (10, 3) == (len(s), s.write_cursor)


def test_scratch_dir_of_the_earlier_layout_still_opens(tmp_path):
    """Two int64 counters, no row flags, no declared leaves: what scratch dirs held before issue 13."""
    import json

    import numpy as np

    rb = ReplayBuffer(storage=LazyMemmapStorage(8, scratch_dir=tmp_path))
    rb.extend(TensorDict({"x": torch.arange(11.0)}, [11]))
    np.array([8, 3], dtype=np.int64).tofile(tmp_path / "counters.memmap")
    (tmp_path / "rows.memmap").unlink()
    meta = json.loads((tmp_path / "storage.json").read_text())
    for key in ("leaves", "item_shape", "format"):
        del meta[key]
    (tmp_path / "storage.json").write_text(json.dumps(meta))
    s = LazyMemmapStorage.load(tmp_path)
    assert (len(s), s.write_cursor) == (8, 3)
    assert s.get(slice(None))["x"].tolist() == [8.0, 9.0, 10.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert os.path.getsize(tmp_path / "counters.memmap") == 8 and (tmp_path / "rows.memmap").exists()
    ReplayBuffer(storage=s).extend(TensorDict({"x": torch.tensor([-1.0])}, [1]))
    assert LazyMemmapStorage.load(tmp_path).get(3)["x"].item() == -1.0
