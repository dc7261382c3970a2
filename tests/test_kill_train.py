"""Killed trainings (portrait_sdk.reliability.kills; two kills here, the full run of 20 is
``python -m portrait_sdk.reliability``): the command is SIGKILLed and resumed until the run finishes, every resume
starting at the newest checkpoint with the optimizer's state; a truncated newest checkpoint is skipped with a
warning and the one before it used."""

from __future__ import annotations

import subprocess

from portrait_sdk.reliability.fixtures import toy_recipe
from portrait_sdk.reliability.kills import kill_trainings, progress_steps, train_command, truncate_newest


def test_sigkilled_training_resumes_at_the_newest_checkpoint_until_it_finishes(tmp_path):
    recipe = toy_recipe(tmp_path, epochs=4, steps_per_epoch=3, checkpoint_every=2)
    result = kill_trainings(recipe, tmp_path / "run", kills=2, steps_per_epoch=3, seed=3)
    assert not result.problems, result.problems
    assert len(result.kills) == 2 and all(lost >= 0 for lost in result.lost)


def test_a_truncated_newest_checkpoint_is_skipped_with_a_warning(tmp_path):
    recipe = toy_recipe(tmp_path, epochs=1, steps_per_epoch=3, checkpoint_every=2)  # checkpoints at steps 2 and 3
    run = tmp_path / "run"
    subprocess.run(train_command(recipe, run, resume=False), capture_output=True, timeout=900, check=True)
    corrupt = truncate_newest(run, next_run=1)
    assert corrupt["path"].endswith("ckpt-3") and corrupt["expected_step"] == 2
    recipe.write_text(recipe.read_text().replace("epochs = 1", "epochs = 2"))
    resumed = subprocess.run(train_command(recipe, run, resume=True), capture_output=True, text=True, timeout=900)
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, output[-3000:]
    assert "ckpt-3: unreadable checkpoint" in output and "resuming from the one before it" in output
    assert progress_steps(output, 3)[0] == 2
