"""Bad arguments to build_model fail fast with a message naming the constraint and the valid choices."""

from __future__ import annotations

from dataclasses import replace
from unittest import mock

import pytest

from portrait_sdk.models import build_model, get_spec, list_models, registry


def test_unknown_model_lists_valid_choices():
    with pytest.raises(ValueError, match=r"unknown model 'nope'.*portraitnet"):
        build_model("nope")


def test_input_size_not_divisible_by_output_stride():
    with pytest.raises(ValueError, match=r"divisible by the output stride 32"):
        build_model("portraitnet", input_size=(225, 224))


def test_wrong_channel_count_lists_valid_counts():
    with pytest.raises(ValueError, match=r"5 input channels not supported; valid choices: 3, 4"):
        build_model("portraitnet", input_channels=5)


def test_unknown_option_and_bad_option_value():
    with pytest.raises(ValueError, match=r"unknown option 'depth'"):
        build_model("portraitnet", depth=3)
    with pytest.raises(ValueError, match=r"width=0.3 not supported; valid choices: 0.5, 0.75, 1.0, 1.4"):
        build_model("mmnet", width=0.3)


def test_errors_are_raised_before_any_graph_is_built(monkeypatch):
    builder = mock.Mock()
    monkeypatch.setitem(registry._REGISTRY, "portraitnet", replace(get_spec("portraitnet"), builder=builder))
    for bad in ({"input_size": (100, 100)}, {"input_channels": 2}, {"num_filters": 3}):
        with pytest.raises(ValueError):
            build_model("portraitnet", **bad)
    builder.assert_not_called()
    build_model("portraitnet")
    builder.assert_called_once_with((224, 224, 3), training_heads=False)


def test_names_are_case_and_dash_insensitive():
    assert get_spec("Hair-Segmenter").name == "hair_segmenter"


def test_list_models_by_task():
    assert set(list_models("portrait")) == {"portraitnet", "extremec3net", "sinet", "selfie"}
    assert list_models("matting") == ["mmnet"]


def test_video_variant_takes_a_fourth_channel():
    model = build_model("portraitnet", input_size=64, input_channels=4)
    assert model.input_shape == (None, 64, 64, 4)
    assert model.output_shape == (None, 64, 64, 2)
