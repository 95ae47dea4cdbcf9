"""One home for the emotion labels and their valence (service/emotions.py), and its checks: the training
side's copy in model/features.py is equal, every committed manifest agrees, a manifest that disagrees is
refused at load with a clear error, and the API schemas get the labels without onnxruntime."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model import features, synthetic
from service import emotions, model_repository
from service.emotions import LABELS, NEGATIVE, VALENCE, LabelMismatch
from service.inference import EmotionModel, ProviderChoice
from service.temporal import TemporalModel

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = ROOT / "model_repository"
CPU = ProviderChoice("cpu", "test")


def test_the_training_side_copy_is_equal() -> None:
    # model/ may not import service/ (tests/test_layering.py), so it keeps its own copy: this is the check.
    assert features.LABELS == LABELS
    assert features.VALENCE == VALENCE
    assert [LABELS[i] for i in NEGATIVE] == ["angry", "disgust", "fear", "sad"]
    assert synthetic.NEGATIVE.tolist() == [i in NEGATIVE for i in range(len(LABELS))]


def test_every_committed_manifest_agrees() -> None:
    checked = []
    for name in ("emotion_cnn", "temporal"):
        for version in model_repository.versions(REPOSITORY, name):
            artifact = model_repository.load(REPOSITORY, name, version)
            emotions.check_manifest(artifact.tag, artifact.manifest)
            checked.append(artifact.tag)
    assert "emotion_cnn:1" in checked and len(checked) >= 2


def test_the_documented_valence_table_is_this_one() -> None:
    page = (ROOT / "docs" / "drift.md").read_text()
    classes = re.search(r"^\| class \|(.+)\|$", page, re.M)
    values = re.search(r"^\| valence \|(.+)\|$", page, re.M)
    assert classes and values
    names = [c.strip() for c in classes.group(1).split("|")]
    numbers = [float(v.strip().replace("−", "-").replace("+", "")) for v in values.group(1).split("|")]
    assert names == list(LABELS)
    assert dict(zip(names, numbers)) == VALENCE


def _copy_with(tmp_path: Path, name: str, change: dict) -> model_repository.Artifact:
    """A copy of the served version of ``name`` whose manifest has ``change`` applied (the sha256 still
    matches: only the manifest is edited, not the model)."""
    source = model_repository.load(REPOSITORY, name)
    folder = tmp_path / name / str(source.version)
    shutil.copytree(source.model_path.parent, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    for key, value in change.items():
        target = manifest
        *path, last = key.split(".")
        for part in path:
            target = target[part]
        target[last] = value
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return model_repository.load(tmp_path, name)


def test_an_emotion_cnn_with_its_labels_in_another_order_is_refused(tmp_path: Path) -> None:
    swapped = list(LABELS)
    swapped[3], swapped[4] = swapped[4], swapped[3]  # happy <-> sad: the worst silent mistake
    artifact = _copy_with(tmp_path, "emotion_cnn", {"labels": swapped})
    with pytest.raises(LabelMismatch, match=r"emotion_cnn:1 lists the labels .*'sad', 'happy'.* \(service/emotions.py\)"):
        EmotionModel(artifact, CPU)
    # the unedited copy loads: the refusal is the labels', not the copying's
    assert EmotionModel(_copy_with(tmp_path / "ok", "emotion_cnn", {}), CPU).labels == list(LABELS)


def test_a_temporal_model_with_other_labels_or_valence_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LabelMismatch, match="lists the labels"):
        TemporalModel(_copy_with(tmp_path / "a", "temporal", {"labels": list(LABELS[:6])}), CPU)
    other = dict(VALENCE, surprise=0.5)
    with pytest.raises(LabelMismatch, match=r"valence table .*'surprise': 0.5"):
        TemporalModel(_copy_with(tmp_path / "b", "temporal", {"features.valence": other}), CPU)
    model = TemporalModel(_copy_with(tmp_path / "c", "temporal", {}), CPU)
    assert model.valence.tolist() == pytest.approx([VALENCE[label] for label in LABELS])


def test_the_schemas_get_the_labels_without_onnxruntime() -> None:
    code = "import sys, service.schemas; print('onnxruntime' in sys.modules, 'service.temporal' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.split() == ["False", "False"]


def test_the_tests_shared_constants_speak_the_same_labels() -> None:
    from tests import constants

    assert constants.LABELS == list(LABELS)
    for mood in (constants.HAPPY, constants.SAD):
        assert list(mood) == list(LABELS) and sum(mood.values()) == pytest.approx(1.0)
