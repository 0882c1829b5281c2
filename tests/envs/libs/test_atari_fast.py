"""AtariEnv (AtariPreprocessing.make's fused env) against the transform chain it replaces.

The chain, ``AtariPreprocessing.make(name, fused=False)``, is the reference: the same seed, the same
actions (and the same torch global RNG, from which the no-ops are drawn) must give bit-identical
pixels, rewards, done and end-of-life flags, through a life loss and a game over with its reset.
Without ale-py (the ``atari`` extra) these tests skip, except under CI=true.
"""
from __future__ import annotations

import os

import pytest
import torch

from rlbench.envs import AtariPreprocessing, ParallelEnv, SerialEnv, check_env_specs, step_mdp
from rlbench.envs.libs.atari import AtariEnv
from rlbench.envs.transforms import TransformedEnv
from rlbench.envs.transforms.atari import ale_lives


@pytest.fixture(scope="module", autouse=True)
def _ale():
    try:
        import ale_py  # noqa: F401
    except ImportError as err:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Atari tests cannot run under CI=true: ale-py is missing ({err})")
        pytest.skip('ale-py is not installed: pip install "rlbench[atari]"')


def _assert_same(a, b):
    assert set(a.keys(True, True)) == set(b.keys(True, True))
    assert a.batch_size == b.batch_size
    for key in a.keys(True, True):
        x, y = a.get(key), b.get(key)
        assert x.shape == y.shape and x.dtype == y.dtype, key
        assert torch.equal(x, y), f"{key}: {(x != y).sum().item()} of {x.numel()} values differ"


def _seeded(env, seed=0):
    torch.manual_seed(seed)  # a seeded env draws nothing from the global RNG; the same state for both paths anyway
    env.set_seed(seed)
    return env


class _Policy:
    """Actions from its own generator, so both envs get the same sequence."""

    def __init__(self, n, seed=1):
        self.gen = torch.Generator().manual_seed(seed)
        self.n = n

    def __call__(self, td):
        return td.set("action", torch.randint(self.n, (), generator=self.gen))


def test_a_seeded_env_reproduces_its_rollout_whatever_the_global_rng():
    prep = AtariPreprocessing()
    runs = []
    for global_seed in (1, 2):
        for fused in (True, False):
            env = prep.make("ALE/Breakout-v5", fused=fused)
            env.set_seed(0)
            torch.manual_seed(global_seed)
            runs.append(env.rollout(60, _Policy(4), break_when_any_done=False))
    for other in runs[1:]:
        _assert_same(runs[0], other)


def test_make_returns_the_fused_env_and_the_chain_on_request():
    prep = AtariPreprocessing()
    fused, chain = prep.make("ALE/Pong-v5"), prep.make("ALE/Pong-v5", fused=False)
    assert isinstance(fused, AtariEnv) and fused.preprocessing is prep
    assert isinstance(chain, TransformedEnv)
    assert [type(t).__name__ for t in chain.transform] == [type(t).__name__ for t in prep.transforms()]
    for name in ("observation_spec", "action_spec", "reward_spec", "done_spec", "state_spec"):
        assert getattr(fused, name) == getattr(chain, name), name
    assert fused.observation_spec["pixels"].shape == (4, 84, 84)
    check_env_specs(fused)


def test_random_rollout_matches_the_chain_through_life_losses_and_a_reset():
    prep = AtariPreprocessing()  # every step on: no-ops, sticky actions, skip + pool, gray, resize, stack, sign
    chain = _seeded(prep.make("ALE/Breakout-v5", fused=False))
    ref = chain.rollout(400, break_when_any_done=False)
    ref_rng = torch.get_rng_state()
    fused = _seeded(prep.make("ALE/Breakout-v5"))
    got = fused.rollout(400, break_when_any_done=False)
    _assert_same(ref, got)
    assert torch.equal(torch.get_rng_state(), ref_rng)  # the same draws from the global RNG
    done, eol = ref["next", "done"].squeeze(-1), ref["next", "end_of_life"].squeeze(-1)
    assert done.any() and done.nonzero()[0, 0] < 399  # a game over, then a reset with its no-ops
    assert int((eol & ~done).sum()) >= 3  # life losses that did not end the game
    assert ref["end_of_life"].any()  # a flag carried to the next root by step_mdp
    assert ref["next", "reward"].abs().sum() > 0 and not torch.equal(ref["pixels"][0], ref["pixels"][-1])
    # the env is left where the chain's is: a policy rollout from the last root goes on identically
    start = step_mdp(ref[-1])
    cont_ref = chain.rollout(120, _Policy(4), break_when_any_done=False, auto_reset=False, tensordict=start.clone())
    torch.set_rng_state(ref_rng)  # the chain's continuation drew from it too
    cont = fused.rollout(120, _Policy(4), break_when_any_done=False, auto_reset=False, tensordict=start.clone())
    _assert_same(cont_ref, cont)
    assert ale_lives(fused) == ale_lives(chain)


def test_policy_rollout_and_steps_match_the_chain():
    prep = AtariPreprocessing()
    chain = _seeded(prep.make("ALE/Breakout-v5", fused=False), 3)
    ref = chain.rollout(250, _Policy(4), break_when_any_done=False)
    fused = _seeded(prep.make("ALE/Breakout-v5"), 3)
    got = fused.rollout(250, _Policy(4), break_when_any_done=False)
    _assert_same(ref, got)
    assert ref["next", "end_of_life"].any()
    # break_when_any_done stops at the same step on both paths
    a = _seeded(prep.make("ALE/Breakout-v5", fused=False), 5).rollout(1000)
    b = _seeded(prep.make("ALE/Breakout-v5"), 5).rollout(1000)
    _assert_same(a, b)
    assert a.shape[0] < 1000 and bool(a["next", "done"][-1])


@pytest.mark.parametrize("fields", [
    dict(noop_max=0, screen_size=0, grayscale=False, frame_stack=0),  # raw-size RGB, no stack
    dict(frame_skip=1, frame_stack=2, screen_size=42),  # no skip, hence no max-pool
    dict(max_pool=False, end_of_life=False, sign_reward=False, repeat_action_probability=0.0, noop_max=5),
])
def test_each_configuration_matches_the_chain(fields):
    prep = AtariPreprocessing(**fields)
    chain, fused = prep.make("ALE/Pong-v5", fused=False), prep.make("ALE/Pong-v5")
    assert fused.observation_spec == chain.observation_spec and fused.reward_spec == chain.reward_spec
    ref = _seeded(chain).rollout(40, break_when_any_done=False)
    got = _seeded(fused).rollout(40, break_when_any_done=False)
    _assert_same(ref, got)
    got_steps = _seeded(fused).rollout(40, _Policy(6), break_when_any_done=False)
    _assert_same(_seeded(chain).rollout(40, _Policy(6), break_when_any_done=False), got_steps)
    torch.manual_seed(1)
    ref_reset = chain.reset(seed=7)  # a seed given to reset goes to the gym env, as through the chain
    torch.manual_seed(1)
    _assert_same(ref_reset, fused.reset(seed=7))


def test_batched_fused_envs():
    prep = AtariPreprocessing()
    serial = SerialEnv(2, lambda: prep.make("ALE/Pong-v5"))
    check_env_specs(serial)
    serial_chain = SerialEnv(2, lambda: prep.make("ALE/Pong-v5", fused=False))
    _assert_same(_seeded(serial_chain).rollout(30, break_when_any_done=False),
                 _seeded(serial).rollout(30, break_when_any_done=False))
    with ParallelEnv(2, lambda: AtariPreprocessing().make("ALE/Pong-v5")) as env:
        check_env_specs(env)
        td = env.rollout(5)
        assert td["next", "pixels"].shape == (2, 5, 4, 84, 84) and td["next", "end_of_life"].dtype == torch.bool


def test_bad_input():
    env = AtariPreprocessing().make("ALE/Pong-v5")
    td = env.reset().set("action", torch.tensor(6))
    with pytest.raises(ValueError, match=r"AtariEnv.step: action under key 'action' does not match action_spec"):
        env.step(td)
    with pytest.raises(ValueError, match=r"expected shape \(\)"):
        env.step(td.set("action", torch.tensor([1])))
    with pytest.raises(TypeError, match="AtariEnv: preprocessing must be an AtariPreprocessing"):
        AtariEnv("ALE/Pong-v5", {"frame_skip": 4})
