"""Killed trainings (portrait_sdk.reliability.kills; two kills here, the full run of 20 is
``python -m portrait_sdk.reliability``): the command is SIGKILLed, its newest checkpoint truncated once, and every
resume starts at the newest readable checkpoint with the optimizer's state, until the run finishes."""

from __future__ import annotations

from portrait_sdk.reliability.fixtures import toy_recipe
from portrait_sdk.reliability.kills import kill_trainings


def test_sigkilled_training_resumes_from_the_newest_readable_checkpoint(tmp_path):
    recipe = toy_recipe(tmp_path, epochs=4, steps_per_epoch=3, checkpoint_every=2)
    result = kill_trainings(recipe, tmp_path / "run", kills=2, steps_per_epoch=3, seed=3, corrupt_after=1)
    assert not result.problems, result.problems
    assert len(result.kills) == 2 and all(lost is not None and lost >= 0 for lost in result.lost)
    corrupt = result.corrupt_resume
    assert corrupt["warned"] and corrupt["resumed_step"] == corrupt["expected_step"], corrupt
