"""TrainResults (rlbench/trainers/results.py): its summary line, defaults, and import paths."""
from rlbench.trainers import TrainResults


def test_train_results_has_its_own_module_and_keeps_its_old_import_paths():
    import ast
    import inspect

    import rlbench.trainers
    import rlbench.trainers.report as report
    import rlbench.trainers.run as run
    from rlbench.trainers.results import TrainResults as from_results

    assert rlbench.trainers.TrainResults is run.TrainResults is from_results is TrainResults
    imported = {node.module for node in ast.walk(ast.parse(inspect.getsource(report)))
                if isinstance(node, ast.ImportFrom)}
    assert "run" not in imported and "results" in imported  # report no longer imports run (no cycle)


def test_summary_rounds_to_one_decimal_and_fields_default_empty():
    r = TrainResults("ppo", "CartPole-v1", 187.46, 3.2, 10, 5000, 2.0, 1.5)
    assert r.summary() == "final mean evaluation return: 187.5 over 10 episodes"
    assert TrainResults("dqn", "x", -7.0, 0.0, 1, 1, 0.0, 0.0).summary() == \
        "final mean evaluation return: -7.0 over 1 episodes"
    assert (r.curve, r.train_curve, r.files, r.config) == ([], [], {}, {})
    assert (r.solved_frames, r.solved_time, r.run_dir) == (None, None, None)
    other = TrainResults("ppo", "CartPole-v1", 187.46, 3.2, 10, 5000, 2.0, 1.5)
    other.curve.append({"frames": 1})
    assert r.curve == []  # each result owns its lists
