"""Model backends load the tiny checkpoints through the real loading code, and fail clearly."""

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from hyperface.generators.arc2face import Arc2FaceGenerator, Arc2FaceTextEncoder, load_tokenizer
from hyperface.generators.gallery import FolderGallery, load_gallery_generator
from hyperface.loading import WeightsError
from hyperface.recognition.embedders import load_embedder
from hyperface.storage.images import save_png


def test_encoder_loads_every_legacy_tensor(tiny):
    folder = tiny["arc2face"] / "encoder"
    encoder = Arc2FaceTextEncoder.from_folder(folder)
    legacy = torch.load(folder / "pytorch_model.bin", weights_only=True)
    assert all(k.startswith("text_model.") for k in legacy)
    own = encoder.clip.state_dict()
    for key, value in legacy.items():
        name = key.removeprefix("text_model.")
        if name != "embeddings.position_ids":
            torch.testing.assert_close(own[name], value, rtol=0, atol=0)


def test_encoder_with_unknown_names_is_an_error(tiny, tmp_path):
    folder = shutil.copytree(tiny["arc2face"] / "encoder", tmp_path / "encoder")
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    torch.save(
        {k.replace("text_model.", "model.text."): v for k, v in state.items()},
        folder / "pytorch_model.bin",
    )
    with pytest.raises(WeightsError, match="missing"):
        Arc2FaceTextEncoder.from_folder(folder)


def test_vae_legacy_attention_names_are_converted(tiny):
    from diffusers import AutoencoderKL

    from hyperface.loading import load_diffusers

    path = tiny["base_model"] / "vae" / "diffusion_pytorch_model.safetensors"
    on_disk = load_file(str(path))
    assert any(".attentions.0.query." in k for k in on_disk)
    vae = load_diffusers(AutoencoderKL, tiny["base_model"] / "vae")
    key = next(k for k in on_disk if ".attentions.0.query.weight" in k)
    torch.testing.assert_close(vae.state_dict()[key.replace(".query.", ".to_q.")], on_disk[key])


def test_wrong_tensor_shape_names_the_file(tiny, tmp_path):
    folder = shutil.copytree(tiny["arc2face"] / "arc2face", tmp_path / "arc2face")
    f = folder / "diffusion_pytorch_model.safetensors"
    state = load_file(str(f))
    key = next(k for k in state if k.endswith("conv_in.weight"))
    state[key] = torch.zeros(3, 3, 3, 3)
    save_file(state, str(f))
    from diffusers import UNet2DConditionModel

    from hyperface.loading import load_diffusers

    with pytest.raises(WeightsError, match=str(folder)):
        load_diffusers(UNet2DConditionModel, folder)


def test_tokenizer_must_spell_the_prompt(tiny, tmp_path):
    assert load_tokenizer(tiny["base_model"]).model_max_length == 77
    base = shutil.copytree(tiny["base_model"], tmp_path / "sd")
    # a tokenizer that does not know the word "person" spells it letter by letter
    merges = (base / "tokenizer" / "merges.txt").read_text().splitlines()
    kept = [m for m in merges if not m.replace(" ", "").startswith(("pe", "per"))]
    (base / "tokenizer" / "merges.txt").write_text("\n".join(kept) + "\n")
    with pytest.raises(WeightsError, match="does not spell"):
        load_tokenizer(base)
    # a broken one (vocabulary and merges disagree) names its folder
    vocab = json.loads((base / "tokenizer" / "vocab.json").read_text())
    vocab.pop("id</w>")
    (base / "tokenizer" / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(WeightsError, match="tokenizer"):
        load_tokenizer(base)


def test_missing_files_name_the_path(tiny, tmp_path):
    with pytest.raises(WeightsError, match="missing"):
        Arc2FaceGenerator(tmp_path / "nope", tiny["base_model"])
    with pytest.raises(WeightsError, match="nope.onnx"):
        load_embedder("insightface", tmp_path / "nope.onnx")
    corrupt = tmp_path / "bad.onnx"
    corrupt.write_bytes(b"not an onnx file")
    with pytest.raises(WeightsError, match="bad.onnx"):
        load_embedder("insightface", corrupt)


def test_arc2face_is_deterministic_and_conditioned(tiny):
    gen = Arc2FaceGenerator(tiny["arc2face"], tiny["base_model"], steps=2, resolution=64)
    emb = np.random.default_rng(0).normal(size=(2, 512)).astype(np.float32)
    z = torch.randn(2, *gen.latent_shape, generator=torch.Generator().manual_seed(0))
    a = gen.generate(emb, z)
    b = gen.generate(emb, z)
    assert a.shape == (2, 64, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    # the ID embedding reaches the prompt: another identity gives another conditioning
    c1 = gen.condition(torch.from_numpy(emb[:1]))
    c2 = gen.condition(torch.from_numpy(emb[1:]))
    assert not torch.allclose(c1, c2)


def test_arcface_embedder_gives_unit_vectors(tiny):
    embedder = load_embedder("insightface", tiny["arcface"])
    faces = [
        np.random.default_rng(i).integers(0, 255, (112, 112, 3), dtype=np.uint8) for i in range(3)
    ]
    emb = embedder.embed(faces)
    assert emb.shape == (3, 512)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_ldm_gallery_is_reproducible_per_index(tiny):
    gallery = load_gallery_generator("ldm", tiny["ldm"], steps=2)
    one = gallery.generate([3, 4], seed=0)
    np.testing.assert_array_equal(one[1], gallery.generate([3, 4], seed=0)[1])
    # the draw for index 4 does not depend on its batch; only CPU kernel rounding may (<= 1 level)
    other = gallery.generate([4], seed=0)
    assert np.abs(one[1].astype(int) - other[0]).max() <= 1


def test_folder_gallery_order_and_bad_files(tmp_path):
    for name in ["b.png", "a.png", "sub/c.png"]:
        save_png(np.zeros((40, 40, 3), np.uint8), tmp_path / name)
    gallery = FolderGallery(tmp_path)
    assert [p.name for p in gallery.files] == ["a.png", "b.png", "c.png"]
    (tmp_path / "z.png").write_bytes(b"junk")
    with pytest.raises(WeightsError, match="z.png"):
        FolderGallery(tmp_path).generate([3], seed=0)


def test_stylegan2_tiny_loads_strictly_and_is_seeded(tiny):
    from hyperface.generators.stylegan2 import StyleGAN2Gallery, StyleGAN2Generator

    model = StyleGAN2Generator.from_safetensors(tiny["stylegan2"])
    on_disk = load_file(str(tiny["stylegan2"]))
    assert set(on_disk) == set(model.state_dict())
    assert any(k.endswith("noise_const") for k in on_disk) and "mapping.w_avg" in on_disk
    gallery = StyleGAN2Gallery(tiny["stylegan2"], truncation_psi=0.7, noise_mode="random")
    a = gallery.generate([5, 6], seed=0)
    assert a[0].shape == (64, 64, 3) and a[0].dtype == np.uint8 and a[0].std() > 0
    # per-index draws: index 6 alone matches index 6 in a batch (up to CPU rounding)
    assert np.abs(gallery.generate([6], seed=0)[0].astype(int) - a[1]).max() <= 1
    assert not np.array_equal(a[0], a[1])


def test_stylegan2_bad_files_name_the_path(tiny, tmp_path):
    from hyperface.generators.stylegan2 import StyleGAN2Generator

    state = load_file(str(tiny["stylegan2"]))
    bare = tmp_path / "no-meta.safetensors"
    save_file(state, str(bare))
    with pytest.raises(WeightsError, match="convert_stylegan2"):
        StyleGAN2Generator.from_safetensors(bare)
    from safetensors import safe_open

    with safe_open(str(tiny["stylegan2"]), framework="pt") as f:
        meta = f.metadata()
    state["synthesis.b8.conv1.weight"] = torch.zeros(1, 1, 3, 3)
    wrong = tmp_path / "wrong.safetensors"
    save_file(state, str(wrong), metadata=meta)
    with pytest.raises(WeightsError, match="synthesis.b8.conv1.weight"):
        StyleGAN2Generator.from_safetensors(wrong)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match="corrupt.safetensors"):
        StyleGAN2Generator.from_safetensors(corrupt)
    with pytest.raises(WeightsError, match="missing"):
        StyleGAN2Generator.from_safetensors(tmp_path / "absent.safetensors")


def test_facenet_embedder_from_a_local_state_dict(tmp_path):
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(0)
    path = tmp_path / "20180402-114759-vggface2.pt"
    torch.save(InceptionResnetV1(classify=True, num_classes=10).state_dict(), path)
    embedder = load_embedder("facenet", path)
    faces = [
        np.random.default_rng(i).integers(0, 255, (112, 112, 3), dtype=np.uint8) for i in range(2)
    ]
    emb = embedder.embed(faces)
    assert emb.shape == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    truncated = {
        k: v for k, v in torch.load(path, weights_only=True).items() if not k.startswith("block8")
    }
    torch.save(truncated, tmp_path / "broken.pt")
    with pytest.raises(WeightsError, match="broken.pt"):
        load_embedder("facenet", tmp_path / "broken.pt")
