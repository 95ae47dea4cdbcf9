"""The temporal model's score profile: what ``python -m export score-profile`` writes is what is committed,
the service loads and uses it, and with it a new user who never changes is not taken for a changed one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from benchmarks.detection import lstm_events, lstm_scores
from benchmarks.streams import make_streams
from service import model_repository
from service.config import Settings
from service.drift import DetectorConfig
from service.inference import ProviderChoice
from service.temporal import TemporalModel

pytestmark = pytest.mark.slow  # left out of `make test-fast` (see README)

REPOSITORY = Settings().model_repository
LATEST = max(model_repository.versions(REPOSITORY, "temporal"))


@pytest.fixture(scope="module")
def temporal() -> TemporalModel:
    return TemporalModel(model_repository.load(REPOSITORY, "temporal"), ProviderChoice("cpu", "test"))


def test_the_committed_profile_is_what_the_export_command_measures(tmp_path: Path) -> None:
    committed = json.loads((REPOSITORY / "temporal" / str(LATEST) / "manifest.json").read_text())
    shutil.copytree(REPOSITORY / "temporal" / str(LATEST), tmp_path / "temporal" / str(LATEST))
    manifest = tmp_path / "temporal" / str(LATEST) / "manifest.json"
    stripped = {k: v for k, v in committed.items() if k != "score_profile"}
    manifest.write_text(json.dumps(stripped, indent=2) + "\n")
    subprocess.run([sys.executable, "-m", "export", "score-profile", "--repository", str(tmp_path)], check=True,
                   capture_output=True, timeout=300)
    written = json.loads(manifest.read_text())
    assert {k: v for k, v in written.items() if k != "score_profile"} == stripped  # nothing else touched
    ours, theirs = written["score_profile"], committed["score_profile"]
    np.testing.assert_allclose(ours["mean"], theirs["mean"], atol=2e-3)
    np.testing.assert_allclose(ours["sd"], theirs["sd"], atol=2e-3)
    assert (ours["seed"], ours["users"], len(ours["mean"])) == (theirs["seed"], theirs["users"], len(theirs["mean"]))
    # the climb it corrects: a new user scores ~0 (logit -4.5) at post 8, ~0.2 (logit -1.3) by post 80
    assert ours["mean"][8] < -4.0 and ours["mean"][80] > -2.0


def test_the_service_reads_the_profile_from_the_manifest(temporal: TemporalModel) -> None:
    entry = temporal.artifact.manifest["score_profile"]
    profile = temporal.score_profile
    assert profile is not None and entry["id"].endswith("/" + profile.id)
    assert len(profile.mean) == len(entry["mean"]) and profile.sd[80] == entry["sd"][80]


def test_new_users_who_never_change_are_not_taken_for_changed(temporal: TemporalModel) -> None:
    # the benchmark's placebo streams (a start drawn, nothing changes there): the service's default detector
    streams = make_streams("placebo", 120, seed=4242)
    scores = lstm_scores(temporal, streams)

    def chance(profile) -> float:
        alarms, _ = lstm_events(scores, replace(DetectorConfig(), profile=profile))
        return float(np.mean([any(a >= 8 for a in row) for row in alarms]))

    with_profile, raw = chance(temporal.score_profile), chance(None)
    assert with_profile <= 0.12 and raw >= 2 * with_profile + 0.1, (with_profile, raw)
