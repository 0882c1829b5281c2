"""Environments: the EnvBase contract, gymnasium wrappers, torch-native envs, batching, transforms."""
from .common import DONE_KEYS, EnvBase
from .utils import SpecCheckError, SpecMismatch, check_env_specs, step_mdp

__all__ = ["EnvBase", "DONE_KEYS", "step_mdp", "check_env_specs", "SpecCheckError", "SpecMismatch"]
