"""The HTTP service under fire (portrait_sdk.reliability.service, short budgets here; the full runs are
``python -m portrait_sdk.reliability``): schemathesis finds no 5xx in its OpenAPI spec, a bounded load is answered
right with flat memory, and oversized, slow-loris and malformed uploads get a 4xx JSON answer in time while other
requests keep succeeding."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import model_folder

from portrait_sdk.reliability import service as harness
from portrait_sdk.runtime import Segmenter

MAX_BYTES = 300_000
BODY_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return model_folder(tmp_path_factory)


@pytest.fixture(scope="module")
def service(models, tmp_path_factory):
    log = tmp_path_factory.mktemp("service") / "service.log"
    with harness.running_service(models, log, "--max-upload-bytes", str(MAX_BYTES), "--body-timeout",
                                 str(BODY_TIMEOUT_S)) as live:
        yield live


def test_schemathesis_finds_no_server_error(service):
    result = harness.schemathesis_run(service, max_examples=5, phases="examples,fuzzing")
    assert result["returncode"] == 0, "\n".join(result["summary"])
    assert result["cases"] > 0 and not any(status.startswith("5") for status in result["statuses"])


def test_concurrent_load_is_answered_right_with_flat_memory(service, models):
    segmenter = Segmenter.from_file(models / "tiny_portrait.tflite")
    images = [harness.picture(20 + i) for i in range(5)]
    expected = [np.rint(segmenter.segment(image) * 255) for image in images]
    result = harness.load_run(service, expected, [harness.png(image) for image in images], requests=120, clients=8,
                              warmup=24)
    assert result["errors"] == 0, result["first_errors"]
    assert result["rss_after_mib"] < 1.15 * result["rss_before_mib"], result


def test_abusive_uploads_get_a_json_4xx_in_time_and_others_keep_being_served(service):
    result = harness.abuse_run(service, MAX_BYTES, BODY_TIMEOUT_S, answer_within_s=BODY_TIMEOUT_S + 3)
    failed = {name: case for name, case in result["cases"].items() if not case["ok"]}
    assert not failed, failed
    assert result["cases"]["trickled body (slow loris)"]["status"] == 408
    assert result["ordinary_requests"] > 0 and result["ordinary_failures"] == 0
