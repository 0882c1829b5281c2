"""Renameable keys (rlbench/objectives/_keys.py): KeyView, check_key, keys_list, KeysMixin, and their errors."""
import re

import pytest
import torch
from tensordict import TensorDict

from rlbench.objectives._keys import KeysMixin, KeyView, check_key, keys_list


class Reader(KeysMixin):
    default_keys = {"reward": "reward", "done": ("next", "done")}

    def __init__(self):
        self._init_keys()
        self.changes = []

    def _keys_changed(self, changed):
        self.changes.append(dict(changed))


def test_key_view_reads_iterates_and_refuses_writes():
    view = KeyView({"reward": ("next", "reward"), "value": "state_value"}, "MyLoss")
    assert view.reward == ("next", "reward") and list(view) == ["reward", "value"]
    assert repr(view) == "MyLoss.tensor_keys(reward=('next', 'reward'), value='state_value')"
    with pytest.raises(AttributeError, match=r"MyLoss has no key named 'action'; its keys are \['reward', 'value'\]"):
        view.action
    with pytest.raises(AttributeError, match=r"use MyLoss.set_keys\(reward=...\) to rename a key"):
        view.reward = "r"


@pytest.mark.parametrize("key", ["r", ("next", "r"), ("a",)])
def test_check_key_accepts_str_and_tuples_of_str(key):
    assert check_key("reward", key) is key


@pytest.mark.parametrize("key", [(), 3, ("next", 1), ["next", "r"], None])
def test_check_key_names_the_entry_it_refuses(key):
    with pytest.raises(TypeError, match="set_keys: key 'reward' must be a str or a tuple of str.*got "
                       + re.escape(repr(key))):
        check_key("reward", key)


def test_keys_list_puts_plain_keys_first_then_nested_sorted():
    td = TensorDict({"obs": torch.zeros(1), "action": torch.zeros(1),
                     "next": {"reward": torch.zeros(1), "done": torch.zeros(1)}}, [])
    assert keys_list(td) == "['action', 'obs', ('next', 'done'), ('next', 'reward')]"
    assert keys_list(TensorDict({}, [])) == "[]"


def test_keys_mixin_instances_rename_independently_and_chain():
    a, b = Reader(), Reader()
    assert a.set_keys(reward="rew", done=("next", "term")) is a
    assert (a.tensor_keys.reward, a.tensor_keys.done) == ("rew", ("next", "term"))
    assert (b.tensor_keys.reward, b.tensor_keys.done) == ("reward", ("next", "done"))
    assert Reader.default_keys == {"reward": "reward", "done": ("next", "done")}  # the class default is untouched
    assert a.changes == [{"reward": "rew", "done": ("next", "term")}] and b.changes == []


def test_keys_mixin_errors_name_the_owner_and_the_known_keys():
    r = Reader()
    with pytest.raises(ValueError, match=r"Reader.set_keys: unknown key name\(s\) \['rewrd'\]; "
                                         r"expected some of \['done', 'reward'\]"):
        r.set_keys(rewrd="x")
    with pytest.raises(TypeError, match="key 'reward' must be a str"):
        r.set_keys(reward=5)
    assert r.changes == []  # an unknown name changes nothing

    class Named(torch.nn.Module, KeysMixin):
        default_keys = {"value": "state_value"}

        def __init__(self):
            super().__init__()
            self._init_keys()

    with pytest.raises(AttributeError, match="Named has no key named 'x'"):
        Named().tensor_keys.x
