"""The detector's calibration belongs to the temporal model: the service reads it from the served
model's manifest, Settings only override it, and a model without one is refused."""

from __future__ import annotations

import doctest
import json
import shutil
from pathlib import Path

import pytest

import service.calibration
from service import calibration, model_repository
from service.config import Settings

from tests.conftest import start_service

REPOSITORY = Path(__file__).resolve().parent.parent / "model_repository"


def test_docstring_examples() -> None:
    assert doctest.testmod(service.calibration).failed == 0


def test_each_served_version_brings_its_own_thresholds() -> None:
    configs = {}
    for version in (3, 4):
        manifest = model_repository.load(REPOSITORY, "temporal", version).manifest
        configs[version] = calibration.detector_config(manifest, calibration.overrides(Settings()))
        section = manifest["detector"]
        assert (configs[version].threshold, configs[version].cusum_threshold, configs[version].cusum_slack) == (
            section["threshold"], section["cusum_threshold"], section["cusum_slack"])
        assert section["calibrated_with"]["command"].startswith("python -m benchmarks.")
    assert configs[3].threshold != configs[4].threshold and configs[3].cusum_slack != configs[4].cusum_slack


def test_settings_hold_only_overrides() -> None:
    assert calibration.overrides(Settings()) == {}
    manifest = model_repository.load(REPOSITORY, "temporal", 4).manifest
    config = calibration.detector_config(manifest, calibration.overrides(Settings(drift_threshold=0.9, rebaseline_posts=0)))
    assert (config.threshold, config.rebaseline_posts, config.cusum_threshold) == (0.9, 0, manifest["detector"]["cusum_threshold"])
    view = calibration.describe(manifest, {"threshold": 0.9})
    assert view["overridden"] == ["threshold"] and "threshold" not in view["from_manifest"]


def test_a_model_without_a_calibration_is_refused_unless_the_operator_gives_one() -> None:
    manifest = model_repository.load(REPOSITORY, "temporal", 2).manifest
    assert "detector" not in manifest
    with pytest.raises(calibration.CalibrationMissing, match="EMODRIFT_DRIFT_THRESHOLD"):
        calibration.detector_config(manifest, {})
    config = calibration.detector_config(manifest, {"threshold": 0.7, "confirm_posts": 3, "cusum_threshold": 50.0,
                                                    "cusum_slack": 0.5})
    assert (config.threshold, config.confirm_posts) == (0.7, 3)


def test_serving_temporal_3_runs_on_temporal_3s_calibration(redis_server, tmp_path) -> None:
    running = start_service(redis_url=redis_server.url, data_dir=Path("/nonexistent"), temporal_model_version=3)
    try:
        with running.client() as http:
            detector = http.get("/v1/model").json()["detector"]
    finally:
        running.stop()
    v3 = model_repository.load(REPOSITORY, "temporal", 3).manifest["detector"]
    assert (detector["threshold"], detector["cusum_threshold"], detector["cusum_slack"]) == (
        v3["threshold"], v3["cusum_threshold"], v3["cusum_slack"])
    assert detector["calibration"]["calibrated_with"] == v3["calibrated_with"] and detector["calibration"]["overridden"] == []


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the refused start-up
def test_a_repository_whose_model_lost_its_calibration_does_not_start(redis_server, tmp_path) -> None:
    for name in ("emotion_cnn", "face_detector", "temporal"):
        shutil.copytree(REPOSITORY / name, tmp_path / name)
    path = tmp_path / "temporal" / "4" / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["detector"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(calibration.CalibrationMissing):  # what the lifespan meets
        calibration.detector_config(model_repository.load(tmp_path, "temporal").manifest, {})
    with pytest.raises(RuntimeError, match="did not start"):
        start_service(redis_url=redis_server.url, data_dir=Path("/nonexistent"), model_repository=tmp_path)


@pytest.mark.slow
def test_the_calibration_is_chosen_on_the_training_families_under_the_target(tmp_path) -> None:
    from dataclasses import replace

    from benchmarks import calibrate
    from benchmarks.families import served_config
    from service.inference import ProviderChoice
    from service.temporal import TemporalModel

    artifact = model_repository.load(REPOSITORY, "temporal")
    temporal = TemporalModel(artifact, ProviderChoice("cpu", "test"))
    calibrator = calibrate.Calibrator(calibrate.QUICK, temporal)
    assert set(calibrator.groups) == {"synthetic", "sessions", "days"}  # never the held-out family
    result = calibrator.fit(replace(served_config(temporal), rebaseline_posts=calibrate.REBASELINE_POSTS),
                            log=lambda *_: None)
    chosen = result["chosen"]
    assert max(chosen["false_alarms_per_1000"].values()) <= calibrate.QUICK.target
    assert chosen["recall"] == max(t["recall"] for t in result["tried"])
    # written into a manifest, it is what the service then builds its detector from
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(artifact.manifest))
    calibrate.write(path, served_config(temporal), chosen, calibrate.QUICK)
    config = calibration.detector_config(json.loads(path.read_text()), {})
    assert (config.threshold, config.cusum_threshold, config.share_threshold, config.rebaseline_posts) == (
        chosen["threshold"], chosen["cusum_threshold"], chosen["share_threshold"], calibrate.REBASELINE_POSTS)


def test_the_calibration_can_draw_its_changes_later_in_a_users_life() -> None:
    import argparse
    from dataclasses import replace

    from benchmarks import calibrate
    from service.inference import ProviderChoice
    from service.temporal import TemporalModel

    temporal = TemporalModel(model_repository.load(REPOSITORY, "temporal"), ProviderChoice("cpu", "test"))
    plan = replace(calibrate.QUICK, per_kind=3, pre=(200, 250))
    groups = calibrate.Calibrator(plan, temporal).groups
    starts = [s.start for family in groups.values() for kind, streams in family.items() if kind != "none" for s in streams]
    assert starts and all(200 <= s <= 250 for s in starts)
    assert calibrate._posts_range("30,250") == (30, 250)
    for bad in ("30", "250,30", "a,b", "0,5"):
        with pytest.raises(argparse.ArgumentTypeError):
            calibrate._posts_range(bad)


def test_a_rounds_candidate_is_calibrated_from_the_screens_text(capsys) -> None:
    from benchmarks import calibrate

    grids = ["--quick", "--share-grid", "9.5", "--fast-grid", "0.97"]
    assert calibrate.main(grids) == 0
    served = capsys.readouterr().out
    assert "chosen: fast 0.97 share 9.5 (second 16.15)" in served
    assert calibrate.main([*grids, "--variant", 'fast off={"confirm_posts": 100000}']) == 0
    variant = capsys.readouterr().out
    recall = [float(line.split(" recall ")[1].split()[0]) for line in (served, variant)]
    assert recall[1] < recall[0]  # the variant's fields: without the fast rule the quick run finds less
    assert calibrate.main([*grids, "--variant", 'wider bank={"ratio": 2.0}']) == 0
    assert "chosen: fast 0.97 share 9.5 (second 19.0)" in capsys.readouterr().out  # and its ratio
    with pytest.raises(SystemExit):  # a manifest cannot hold a module constant
        calibrate.main(["--write", "--variant", 'x={"constants": {"SHARE_ALPHA": 0.01}}'])
    for bad in ("9,x", "9,-1", ""):
        with pytest.raises(SystemExit):
            calibrate.main(["--quick", "--share-grid", bad])


def test_a_variants_fields_are_written_with_its_calibration(tmp_path) -> None:
    from dataclasses import replace

    from benchmarks import calibrate
    from benchmarks.families import served_config
    from service.inference import ProviderChoice
    from service.temporal import TemporalModel

    artifact = model_repository.load(REPOSITORY, "temporal")
    base = replace(served_config(TemporalModel(artifact, ProviderChoice("cpu", "test"))), share_anchor_posts=100)
    chosen = {"threshold": 0.97, "cusum_threshold": 300.0, "share_threshold": 9.0, "share2_threshold": 18.0,
              "false_alarms_per_1000": {}, "recall": 0.5}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(artifact.manifest))
    calibrate.write(path, base, chosen, replace(calibrate.QUICK, ratio=2.0), ("share_anchor_posts",))
    written = json.loads(path.read_text())["detector"]
    assert "2.0 x share_threshold" in written["calibrated_with"]["note"]
    config = calibration.detector_config(json.loads(path.read_text()), {})
    assert (config.share_anchor_posts, config.share_threshold, config.share2_threshold) == (100, 9.0, 18.0)
    calibrate.write(path, base, chosen, calibrate.QUICK)  # not a field of the manifest's design unless named
    assert "share_anchor_posts" not in json.loads(path.read_text())["detector"]
