"""LazyMemmapStorage (rlbench/buffers/storages/memmap.py): files, bounded RAM, sharing across processes."""
import os
import subprocess
import sys

import pytest
import torch
from _buffer_data import transitions
from tensordict import TensorDict

from rlbench.buffers import (
    LazyMemmapStorage,
    ReplayBuffer,
)


def test_memmap_files_and_bounded_ram(tmp_path):
    s = LazyMemmapStorage(1000, scratch_dir=tmp_path)
    s.prepare(transitions(2))
    assert (tmp_path / "data" / "observation.memmap").exists()
    assert (tmp_path / "counters.memmap").exists() and (tmp_path / "storage.json").exists()
    assert os.path.getsize(tmp_path / "data" / "observation.memmap") == 1000 * 4 * 4


CHILD = """
import os, pickle, sys, torch
from tensordict import TensorDict
from rlbench.buffers import ReplayBuffer, LazyMemmapStorage
# 1) a storage handed over by pickle: read the parent's data, write into the shared files
s = pickle.loads(bytes.fromhex(sys.argv[1]))
print(len(s), s.get(slice(None))["x"].sum().item(), flush=True)
s.set(slice(0, 1), TensorDict({"x": torch.tensor([-1.0])}, [1]))
# 2) fill a new memmap buffer, then die without any clean-up
rb = ReplayBuffer(storage=LazyMemmapStorage(8, scratch_dir=sys.argv[2]))
rb.extend(TensorDict({"x": torch.arange(11.0)}, [11]))
os._exit(1)
"""


def test_memmap_shared_with_another_process_and_survives_it(tmp_path):
    """One child process (they are slow to start): shared reads/writes, then a buffer left behind by a dead process."""
    import pickle
    s = LazyMemmapStorage(6, scratch_dir=tmp_path / "shared")
    rb = ReplayBuffer(storage=s)
    rb.extend(TensorDict({"x": torch.arange(4.0)}, [4]))
    blob = pickle.dumps(s)
    assert len(blob) < 2000  # only the directory travels, not the data
    d = tmp_path / "orphan"
    proc = subprocess.run([sys.executable, "-c", CHILD, blob.hex(), str(d)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.split() == ["4", "6.0"]
    assert rb[0]["x"].item() == -1.0  # the other process's write is visible here

    s = LazyMemmapStorage.load(d)
    assert len(s) == 8 and s.write_cursor == 3
    assert s.get(slice(None))["x"].tolist() == [8.0, 9.0, 10.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    rb = ReplayBuffer.loads(d)  # the same, as a buffer; writing goes on at the cursor
    rb.extend(TensorDict({"x": torch.tensor([100.0])}, [1]))
    assert rb[3]["x"].item() == 100.0 and rb.storage.write_cursor == 4


def test_memmap_rejects_accelerator_device():
    with pytest.raises(ValueError, match="files on the CPU"):
        LazyMemmapStorage(10, device="meta")


def test_load_missing_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="no storage.json"):
        LazyMemmapStorage.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="no buffer.json"):
        ReplayBuffer.loads(tmp_path)
