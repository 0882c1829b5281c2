"""rlbench.recipes.envs: env names, time limits and the seeded evaluation every recipe reports."""
import pytest
import torch
from tensordict.nn import TensorDictModule

from rlbench.envs import CartPoleEnv, GymEnv, PendulumEnv, step_mdp
from rlbench.recipes import evaluate, make_env
from rlbench.recipes.envs import max_episode_steps, start_run
from rlbench.recipes.models import make_stochastic_actor


def lean_policy():
    """Push the cart toward the side the pole leans to: lasts tens of steps, varies with the start."""
    return TensorDictModule(lambda o: (o[..., 2] > 0).long(), ["observation"], ["action"])


def test_make_env_native_and_gym():
    native = make_env("native:CartPole", num_envs=5, seed=1)
    assert isinstance(native, CartPoleEnv) and native.batch_size == (5,)
    assert isinstance(make_env("native:Pendulum-v1"), PendulumEnv)  # version suffix accepted
    single = make_env("CartPole-v1", seed=0)
    assert isinstance(single, GymEnv) and single.batch_size == ()
    vec = make_env("CartPole-v1", num_envs=3, seed=0)
    assert vec.batch_size == (3,)
    assert vec.rollout(4, break_when_any_done=False).shape == (3, 4)


def test_seeded_envs_leave_the_global_rng_alone():
    # A seeded native env (and its time limit) draw nothing from torch's global RNG, like a gymnasium env:
    # the same seed then gives the same network initialisation after start_run on either.
    torch.manual_seed(0)
    state = torch.get_rng_state()
    make_env("native:CartPole", 4, seed=3)
    max_episode_steps("native:CartPole")
    make_env("CartPole-v1", 4, seed=3)
    assert torch.equal(state, torch.get_rng_state())


def test_make_env_errors_name_the_choices():
    with pytest.raises(ValueError, match=r"unknown torch-native env 'native:Foo'.*native:CartPole.*native:Acrobot"):
        make_env("native:Foo")
    with pytest.raises(ValueError, match=r"unknown env 'NoSuchEnv-v0'.*gymnasium id.*native:CartPole"):
        make_env("NoSuchEnv-v0")
    with pytest.raises(ValueError, match="num_envs must be >= 1, got 0"):
        make_env("native:CartPole", num_envs=0)


def test_max_episode_steps():
    assert max_episode_steps("CartPole-v1") == 500
    assert max_episode_steps("Pendulum-v1") == 200
    assert max_episode_steps("native:CartPole") == 500
    assert max_episode_steps("native:MountainCar") == 200


def manual_first_returns(n, seed, policy, limit):
    """Reference: step the same seeded env one step at a time and add rewards until each first done."""
    env = make_env("native:CartPole", n, seed=seed)
    td = env.reset()
    returns, alive = torch.zeros(n, dtype=torch.float64), torch.ones(n, dtype=torch.bool)
    for _ in range(limit):
        td = env.step(policy(td))
        returns += td["next", "reward"].squeeze(-1).double() * alive
        alive &= ~td["next", "done"].squeeze(-1)
        td = step_mdp(td)
        if not alive.any():
            break
    return returns


def test_evaluate_matches_a_step_by_step_reference():
    mean, std = evaluate("native:CartPole", lean_policy(), num_episodes=6, seed=3)
    ref = manual_first_returns(6, 3, lean_policy(), 500)
    assert ref.std() > 0  # the episodes really differ: the mask picks each one's own end
    assert mean == pytest.approx(float(ref.mean()))
    assert std == pytest.approx(float(ref.std(unbiased=False)))


def test_evaluate_caps_steps_and_counts_partial_returns():
    always_right = TensorDictModule(lambda o: torch.ones(o.shape[:-1], dtype=torch.long), ["observation"], ["action"])
    mean, _ = evaluate("native:CartPole", always_right, num_episodes=4, seed=0, max_steps=3)
    assert mean == 3.0  # no episode ends within 3 steps: each earns 1 per step
    gym_mean, _ = evaluate("CartPole-v1", always_right, num_episodes=3, seed=0)
    assert 5 <= gym_mean <= 15  # pushing one way tips the pole within ~10 steps
    single, std = evaluate("CartPole-v1", always_right, num_episodes=1, seed=0)
    assert std == 0.0 and 5 <= single <= 15


def test_evaluate_is_deterministic_for_a_stochastic_actor():
    env = make_env("native:CartPole", 2)
    actor = make_stochastic_actor(env, (8,))
    first = evaluate("native:CartPole", actor, 4, seed=5, max_steps=60)
    assert first == evaluate("native:CartPole", actor, 4, seed=5, max_steps=60)
    with pytest.raises(ValueError, match="num_episodes must be >= 1"):
        evaluate("native:CartPole", actor, 0)




def test_evaluate_pendulum_matches_a_step_by_step_reference():
    # real-valued rewards: the returns equal a plain float64 sum over each env's 200 steps
    from rlbench.recipes import ddpg

    env = make_env("native:Pendulum", 3)
    actor, _ = ddpg.make_models(env, ddpg.Config(hidden_sizes=(8,)))
    mean, std = evaluate("native:Pendulum", actor, num_episodes=3, seed=11)
    ref_env = make_env("native:Pendulum", 3, seed=11)
    td, total = ref_env.reset(), torch.zeros(3, dtype=torch.float64)
    with torch.no_grad():
        for _ in range(200):
            td = ref_env.step(actor(td))
            total += td["next", "reward"].squeeze(-1).double()
            td = step_mdp(td)
    assert mean == pytest.approx(float(total.mean()), rel=1e-12)
    assert std == pytest.approx(float(total.std(unbiased=False)), rel=1e-9)


def test_start_run_seeds_then_makes_the_training_env():
    from rlbench.recipes import ppo

    config = ppo.Config(env="native:CartPole", num_envs=3, seed=5, torch_threads=1)
    first = start_run(config).reset()["observation"], torch.rand(2)
    second = start_run(config).reset()["observation"], torch.rand(2)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert first[0].shape == (3, 4) and torch.get_num_threads() == 1


# ------------------------------------------------------------------ DeepMind Control ("dmc:") and MuJoCo
def _needs(module: str, extra: str):
    import importlib.util
    import os

    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{module} is missing under CI=true: pip install \"rlbench[{extra}]\"")
        pytest.skip(f"{module} is not installed: pip install \"rlbench[{extra}]\"")


def test_make_env_dmc_concatenates_the_observations_in_the_task_order():
    _needs("dm_control", "dm_control")
    from rlbench.envs import DMControlEnv

    env = make_env("dmc:ball_in_cup-catch", seed=2)  # domain with an underscore: split on the first '-'
    raw = DMControlEnv("ball_in_cup", "catch")
    raw.set_seed(2)
    assert list(env.observation_spec.keys()) == ["observation"]
    assert env.observation_spec["observation"].shape == (8,)  # position (4) + velocity (4)
    td, ref = env.reset(), raw.reset()
    torch.testing.assert_close(td["observation"], torch.cat([ref["position"], ref["velocity"]], -1))
    batched = make_env("dmc:cartpole-swingup", num_envs=3, seed=0)
    assert batched.batch_size == (3,)
    assert batched.rollout(4, break_when_any_done=False)["next", "observation"].shape == (3, 4, 5)


def test_make_env_dmc_errors_name_the_choices():
    _needs("dm_control", "dm_control")
    with pytest.raises(ValueError, match=r"unknown dm_control domain 'cartpolee'.*Did you mean 'cartpole'"):
        make_env("dmc:cartpolee-swingup")
    with pytest.raises(ValueError, match=r"no task 'swingupx'.*Its tasks: balance"):
        make_env("dmc:cartpole-swingupx")


def test_make_env_bad_names_say_what_exists():
    with pytest.raises(ValueError, match=r"'dmc:cartpole' is not a DeepMind Control name: expected dmc:DOMAIN-TASK"):
        make_env("dmc:cartpole")
    with pytest.raises(ValueError, match=r"unknown env suite 'foo:'.*native:NAME.*dmc:DOMAIN-TASK.*gymnasium id"):
        make_env("foo:bar")


def test_evaluate_dmc_matches_plain_dm_control_episodes():
    _needs("dm_control", "dm_control")
    from rlbench.envs import DMControlEnv

    push = TensorDictModule(lambda o: torch.tanh(o[..., 1:2] - o[..., 0:1]), ["observation"], ["action"])
    mean, std = evaluate("dmc:cartpole-swingup", push, num_episodes=2, seed=5, max_steps=60)
    returns = []
    for i in range(2):  # the batched eval env seeds sub-env i with seed + i
        env = DMControlEnv("cartpole", "swingup")
        env.set_seed(5 + i)
        td, total = env.reset(), 0.0
        for _ in range(60):
            obs = torch.cat([td["position"], td["velocity"]], -1)
            td["action"] = torch.tanh(obs[1:2] - obs[0:1])
            td = env.step(td)
            total += float(td["next", "reward"])
            td = step_mdp(td)
        returns.append(total)
    ref = torch.tensor(returns, dtype=torch.float64)
    assert mean == pytest.approx(float(ref.mean()), rel=1e-5)
    assert std == pytest.approx(float(ref.std(unbiased=False)), rel=1e-4, abs=1e-6)


def test_make_env_gymnasium_mujoco_id():
    _needs("mujoco", "mujoco")
    env = make_env("Hopper-v5", seed=0)
    assert isinstance(env, GymEnv) and env.observation_spec["observation"].shape == (11,)
    assert max_episode_steps("HalfCheetah-v5") == 1000
