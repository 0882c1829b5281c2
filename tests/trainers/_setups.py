"""Small, fully seeded DQN-like and PPO-like training setups shared by the trainer tests."""
import torch
from tensordict.nn import (
    InteractionType,
    ProbabilisticTensorDictModule,
    ProbabilisticTensorDictSequential,
    TensorDictModule,
    TensorDictSequential,
)

from rlbench.buffers import LazyTensorStorage, ReplayBuffer
from rlbench.collectors import Collector
from rlbench.envs import CartPoleEnv
from rlbench.modules import MLP, EGreedyModule, QValueActor
from rlbench.objectives import ClipPPOLoss, DQNLoss, HardUpdate
from rlbench.trainers import Trainer

FPB = 32


def dqn(n_batches, **trainer_kwargs):
    """DQN with a replay buffer, a hard-updated target network, annealed epsilon and random warm-up."""
    torch.manual_seed(0)
    env = CartPoleEnv(batch_size=[2])
    actor = QValueActor(MLP(in_features=4, out_features=2, num_cells=[16]), spec=env.action_spec)
    explore = EGreedyModule(env.action_spec, eps_init=1.0, eps_end=0.05, annealing_num_steps=200)
    policy = TensorDictSequential(actor, explore)
    collector = Collector(env, policy, frames_per_batch=FPB, total_frames=FPB * n_batches, init_random_frames=2 * FPB)
    loss = DQNLoss(actor)
    kwargs = dict(target_updater=HardUpdate(loss, value_network_update_interval=4), optim_steps_per_batch=2,
                  batch_size=16, clip_grad_norm=1.0, seed=3, progress_bar=False, log_interval=2 * FPB)
    kwargs.update(trainer_kwargs)
    trainer = Trainer(collector, loss, torch.optim.Adam(loss.parameters(), lr=1e-2),
                      ReplayBuffer(storage=LazyTensorStorage(1000)), **kwargs)
    trainer.register_op("post_steps", lambda: explore.step(FPB))
    return trainer  # random warm-up batches carry the Q-value keys (as zeros): the buffer takes every batch


def ppo(n_batches, **trainer_kwargs):
    """Clipped PPO on-policy: GAE on each batch, 2 epochs of minibatches of 16."""
    torch.manual_seed(0)
    env = CartPoleEnv(batch_size=[4])
    actor = ProbabilisticTensorDictSequential(
        TensorDictModule(MLP(in_features=4, out_features=2, num_cells=[16]), ["observation"], ["logits"]),
        ProbabilisticTensorDictModule(["logits"], ["action"], distribution_class=torch.distributions.Categorical,
                                      return_log_prob=True, log_prob_key="sample_log_prob",
                                      default_interaction_type=InteractionType.RANDOM))
    critic = TensorDictModule(MLP(in_features=4, out_features=1, num_cells=[16]), ["observation"], ["state_value"])
    collector = Collector(env, actor, frames_per_batch=FPB, total_frames=FPB * n_batches)
    loss = ClipPPOLoss(actor, critic)
    kwargs = dict(batch_size=16, num_epochs=2, clip_grad_norm=0.5, seed=5, progress_bar=False,
                  log_interval=3 * FPB)
    kwargs.update(trainer_kwargs)
    return Trainer(collector, loss, torch.optim.Adam(loss.parameters(), lr=1e-2), **kwargs)
