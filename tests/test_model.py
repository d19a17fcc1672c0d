"""Weights resolution (named, local file, random) and equality with torchxrayvision's own pipeline."""
import hashlib

import numpy as np
import pytest
import torch
import torchxrayvision as xrv

from cxrviz import schema as S
from cxrviz.compute.model import (WeightsUnavailable, load_embedder, state_dict_sha256,
                                  weights_cache_path)


@pytest.fixture(scope="module")
def written_weights(tmp_path_factory):
    """A weights file the test writes itself, in both formats torchxrayvision users meet."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(123)
    model = xrv.models.DenseNet(num_classes=18).eval()
    torch.save(model, folder / "release-format.pt")  # a pickled module, as the releases are
    torch.save(model.state_dict(), folder / "state-dict.pt")
    return folder, model


def test_named_weights_missing_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr(xrv.utils, "get_cache_dir", lambda: str(tmp_path / "xrv-cache"))
    with pytest.raises(WeightsUnavailable) as err:
        load_embedder("densenet121-res224-all", allow_download=False)
    text = str(err.value)
    path = weights_cache_path("densenet121-res224-all")
    assert path.name in text and str(path.parent) in text
    assert xrv.models.model_urls["densenet121-res224-all"]["weights_url"] in text
    assert "--weights random" in text and "--weights /path/to/" in text


def test_named_weights_load_from_the_cache_folder(monkeypatch, tmp_path, written_weights):
    """Without network: a file placed in torchxrayvision's cache folder is what gets loaded."""
    folder, model = written_weights
    monkeypatch.setattr(xrv.utils, "get_cache_dir", lambda: str(tmp_path))
    target = weights_cache_path("densenet121-res224-all")
    target.write_bytes((folder / "release-format.pt").read_bytes())
    emb = load_embedder("densenet121-res224-all", allow_download=False)
    assert emb.spec.pretrained and emb.pathologies == list(xrv.models.model_urls["all"]["labels"])
    assert (emb.spec.kind, emb.spec.path) == ("release", str(target))
    assert emb.model.op_threshs is None  # raw logits, calibration off
    x = torch.zeros(1, 1, 224, 224)
    with torch.no_grad():
        np.testing.assert_allclose(emb.embed(x.numpy())[1], model.classifier(model.features2(x)),
                                   rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("name", ["release-format.pt", "state-dict.pt"])
def test_local_weights_file(written_weights, name):
    folder, model = written_weights
    emb = load_embedder(str(folder / name), pretrained=False)
    assert not emb.spec.pretrained and emb.spec.kind == "file"
    assert emb.spec.sha256 == hashlib.sha256((folder / name).read_bytes()).hexdigest()
    for a, b in zip(emb.model.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)


def test_random_weights_are_seeded_and_flagged():
    a, b, c = (load_embedder("random", seed=s) for s in (0, 0, 1))
    assert not a.spec.pretrained and a.spec.sha256 == b.spec.sha256 != c.spec.sha256
    assert a.spec.sha256 == state_dict_sha256(a.model)


@pytest.mark.parametrize("kind", ["random", "file", "release"])
def test_weights_spec_is_written_once_and_read_back_exactly(kind, written_weights, tmp_path,
                                                            monkeypatch):
    """to_manifest -> JSON -> from_manifest gives the same spec, and the embedder rebuilt from
    it has the same weights, precision and batch size: nothing is parsed or defaulted."""
    import json

    from cxrviz.compute.model import embedder_from_spec
    from cxrviz.weights import WeightsSpec

    folder, _ = written_weights
    monkeypatch.setattr(xrv.utils, "get_cache_dir", lambda: str(tmp_path))
    if kind == "release":
        target = weights_cache_path("densenet121-res224-all")
        target.write_bytes((folder / "release-format.pt").read_bytes())
        weights = "densenet121-res224-all"
    else:
        weights = "random" if kind == "random" else str(folder / "state-dict.pt")
    emb = load_embedder(weights, precision="bf16", batch_size=3, seed=7, pretrained=False)
    entry = json.loads(json.dumps(emb.spec.to_manifest()))
    spec = WeightsSpec.from_manifest(entry)
    assert spec == emb.spec and (spec.kind, spec.precision, spec.batch_size) == (kind, "bf16", 3)
    assert (spec.seed == 7) if kind == "random" else True
    again = embedder_from_spec(spec)
    assert again.spec.sha256 == spec.sha256 and again.spec.batch_size == 3
    assert again.spec.precision == "bf16"
    for x, y in zip(again.model.state_dict().values(), emb.model.state_dict().values()):
        assert torch.equal(x, y)
    with pytest.raises(ValueError, match="lacks"):
        WeightsSpec.from_manifest({k: v for k, v in entry.items() if k != S.W_BATCH_SIZE})


def test_not_a_weights_file(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(WeightsUnavailable, match="cannot read weights file"):
        load_embedder(str(bad))
    with pytest.raises(WeightsUnavailable, match="neither a torchxrayvision name"):
        load_embedder(str(tmp_path / "absent.pt"))


def test_logits_equal_torchxrayvision_reference_pipeline(covid_artifact):
    """Per image, torchxrayvision's loader + transforms + model at batch 1 gives our logits."""
    from cxrviz.io.artifact import read_artifact

    art = read_artifact(covid_artifact.out)
    images = art.images[art.images[S.SOURCE] == S.SOURCE_COVID]
    model = load_embedder("random", seed=0).model  # what the session artifact was built with
    dataset = art.manifest[S.M_INPUTS]["dataset"]
    picks = images.iloc[np.linspace(0, len(images) - 1, 12).astype(int)]
    worst = 0.0
    for _, row in picks.iterrows():
        img = xrv.utils.load_image(f"{dataset}/images/{row[S.FILENAME]}")
        img = xrv.datasets.XRayResizer(224)(xrv.datasets.XRayCenterCrop()(img))
        with torch.no_grad():
            ref = model.classifier(model.features2(torch.from_numpy(img)[None]))[0].numpy()
        ours = row[[S.logit_column(p) for p in art.pathologies]].to_numpy(dtype=np.float32)
        rel = np.abs(ours - ref).max() / np.abs(ref).max()
        worst = max(worst, rel)
    assert worst < 1e-4, worst


@pytest.mark.parametrize("kind", ["file", "release"])
def test_a_path_only_the_manifest_names_loads_as_tensors_or_not_at_all(kind, written_weights,
                                                                       tmp_path, monkeypatch):
    """The recorded path holds a pickled module (the release format): refused, saying to pass
    --weights PATH; given that path explicitly, it loads. A plain state_dict at the recorded
    path loads (torch.load(weights_only=True))."""
    from cxrviz.compute.model import embedder_from_spec
    from cxrviz.hashing import sha256_file
    from cxrviz.weights import WeightsSpec

    folder, model = written_weights
    monkeypatch.setattr(xrv.utils, "get_cache_dir", lambda: str(tmp_path / "empty-cache"))
    name = "densenet121-res224-all" if kind == "release" else "release-format.pt"
    pickled = folder / "release-format.pt"
    spec = WeightsSpec(kind, name, sha256_file(pickled), False, path=str(pickled))
    with pytest.raises(WeightsUnavailable, match=f"--weights {pickled}"):
        embedder_from_spec(spec)
    chosen = embedder_from_spec(spec, weights_path=pickled)
    for a, b in zip(chosen.model.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
    if kind == "file":
        tensors = folder / "state-dict.pt"
        plain = embedder_from_spec(WeightsSpec(kind, tensors.name, sha256_file(tensors), False,
                                               path=str(tensors)))
        for a, b in zip(plain.model.state_dict().values(), model.state_dict().values()):
            assert torch.equal(a, b)
