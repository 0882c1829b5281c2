"""EpisodeReturns: returns followed across batches by trajectory id, against a step-by-step reference."""
import pytest
import torch

from rlbench.collectors import Collector, EpisodeReturns, split_trajectories
from rlbench.collectors.utils import assign_traj_ids
from rlbench.testing import CountingEnv


def random_stream(n, t, batches, seed=0, p_done=0.06):
    """Batches of real-valued rewards and random episode ends, with collector-style trajectory ids."""
    g = torch.Generator().manual_seed(seed)
    ids, next_id = torch.arange(n), n
    for _ in range(batches):
        reward = torch.randn(n, t, generator=g) * 3.7
        done = torch.rand(n, t, generator=g) < p_done
        batch_ids, ids, next_id = assign_traj_ids(done, ids, next_id)
        yield reward, done, batch_ids


def step_by_step(stream):
    """Reference: one running float64 sum per sub-env, added to step after step."""
    running, finished = None, []
    for reward, done, _ in stream:
        running = torch.zeros(reward.shape[0], dtype=torch.float64) if running is None else running
        for t in range(reward.shape[1]):
            running += reward[:, t].double()
            finished.extend(running[done[:, t]].tolist())
            running[done[:, t]] = 0.0
    return finished


def test_returns_equal_a_step_by_step_sum_exactly_in_the_order_they_ended():
    tracker = EpisodeReturns(maxlen=10_000)
    per_batch = [tracker.add(*b) for b in random_stream(5, 37, 30)]
    expected = step_by_step(random_stream(5, 37, 30))
    assert len(expected) > 50 and max(len(p) for p in per_batch) > 1  # many episodes, several per batch
    assert [r for p in per_batch for r in p] == expected == list(tracker.recent)  # bit for bit
    assert tracker.finished == len(expected) and tracker.mean() == pytest.approx(sum(expected) / len(expected))
    assert tracker.mean(last=3) == pytest.approx(sum(expected[-3:]) / 3)


def test_carries_episodes_a_batch_does_not_show_and_forgets_them_on_request():
    # two workers' batches arrive in turn (a multi-process collector): each keeps its own running episodes
    tracker = EpisodeReturns()
    ones = torch.ones(1, 3)
    no_end, end_last = torch.zeros(1, 3, dtype=torch.bool), torch.tensor([[False, False, True]])
    tracker.add(ones, no_end, torch.tensor([[0, 0, 0]]))  # worker A
    tracker.add(2 * ones, no_end, torch.tensor([[1, 1, 1]]))  # worker B
    assert tracker.carry == {0: 3.0, 1: 6.0}
    assert tracker.add(ones, end_last, torch.tensor([[0, 0, 0]])) == [6.0]  # A's episode ends: 3 + 3
    assert tracker.add(2 * ones, end_last, torch.tensor([[1, 1, 1]])) == [12.0]
    tracker.add(ones, no_end, torch.tensor([[2, 2, 2]]))
    tracker.drop_running()  # e.g. the env was reset: episode 2 will never end
    assert tracker.carry == {} and tracker.add(ones, end_last, torch.tensor([[2, 2, 2]])) == [3.0]


def test_max_running_drops_the_oldest_ids():
    tracker = EpisodeReturns(max_running=2)
    tracker.add(torch.ones(3, 2), torch.zeros(3, 2, dtype=torch.bool), torch.tensor([[5, 5], [3, 3], [9, 9]]))
    assert tracker.carry == {5: 2.0, 9: 2.0}


def test_update_reads_a_collected_batch_and_split_trajectories_padding():
    env = CountingEnv(max_steps=5, batch_size=[3])  # reward 1 per step: every return is 5
    collector = Collector(env, frames_per_batch=3 * 7, total_frames=3 * 7 * 4)
    tracker, split_tracker = EpisodeReturns(), EpisodeReturns()
    for batch in collector:
        tracker.update(batch)
        split = split_trajectories(batch)
        assert not bool(split["collector", "mask"].all())  # there is padding to ignore
        split_tracker.update(split)
    assert list(tracker.recent) == [5.0] * 15 == list(collector.episodes.recent)
    assert sorted(split_tracker.recent) == [5.0] * 15
    assert tracker.update(batch.exclude("collector")) == []  # without trajectory ids nothing can be followed


def test_state_dict_round_trip_goes_on_exactly():
    stream = list(random_stream(3, 20, 6, seed=1))
    whole, first = EpisodeReturns(), EpisodeReturns()
    for b in stream:
        whole.add(*b)
    for b in stream[:3]:
        first.add(*b)
    state = first.state_dict()
    assert all(isinstance(v, (list, int, torch.Tensor)) for v in state.values())  # weights_only-loadable
    resumed = EpisodeReturns()
    resumed.load_state_dict(state)
    for b in stream[3:]:
        resumed.add(*b)
    assert list(resumed.recent) == list(whole.recent) and resumed.carry == whole.carry
    assert resumed.finished == whole.finished


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="maxlen and max_running must be >= 1"):
        EpisodeReturns(maxlen=0)
