"""CLIP image encoder (``get_image_encoder("clip")``) with a tiny random checkpoint the test writes itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from soundmask.errors import ConfigError, DataError
from soundmask.vision.backbones import IMAGE_ENCODERS, get_image_encoder

WORDS = ["[PAD]", "[UNK]", "<s>", "</s>", "a", "photo", "of", "dog", "cat", "piano"]


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPTextConfig,
        CLIPVisionConfig,
        PreTrainedTokenizerFast,
    )

    vocab = {w: i for i, w in enumerate(WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    # CLIP's text tower pools at the end-of-text token: the tokenizer must add it
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 2), ("</s>", 3)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        bos_token="<s>",
        eos_token="</s>",
        model_max_length=16,
    )
    text = CLIPTextConfig(
        vocab_size=len(WORDS),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=16,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8
    )
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=16))
    folder = tmp_path_factory.mktemp("clip")
    model.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def clip(clip_folder):
    return get_image_encoder("clip", path=clip_folder)


def test_image_and_text_embeddings(clip, rng):
    assert clip.name == "clip" and clip.dim == 16 and clip.input_size == 32
    assert not clip.training and not any(p.requires_grad for p in clip.parameters())
    assert clip.class_names is None and clip.classify(torch.zeros(1, 3, 32, 32)) is None
    images = torch.from_numpy(rng.uniform(0, 1, (3, 3, 32, 32)).astype(np.float32))
    emb = clip.encode(images)
    assert emb.shape == (3, 16) and emb.dtype == torch.float32 and torch.isfinite(emb).all()
    torch.testing.assert_close(clip.encode(images), emb, rtol=0, atol=0)  # deterministic
    torch.testing.assert_close(clip.encode(images[1:2]), emb[1:2], rtol=1e-5, atol=1e-5)  # batch-independent
    assert not torch.allclose(emb[0], emb[1])
    # the processor's normalisation, then the projected pooled output
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).reshape(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).reshape(1, 3, 1, 1)
    with torch.no_grad():
        ref = clip.model.visual_projection(clip.model.vision_model(pixel_values=(images - mean) / std).pooler_output)
    torch.testing.assert_close(emb, ref, rtol=1e-5, atol=1e-5)
    # other sizes are resized to the model's 32²
    big = torch.nn.functional.interpolate(images, size=(64, 64), mode="nearest")
    assert clip.encode(big).shape == (3, 16)
    text = clip.encode_text(["a photo of a dog", "a photo of a cat", "piano"])
    assert text.shape == (3, 16) and text.shape[1] == emb.shape[1] and torch.isfinite(text).all()
    torch.testing.assert_close(clip.encode_text(["a photo of a dog"]), text[:1], rtol=1e-5, atol=1e-5)  # padding
    assert not torch.allclose(text[0], text[1])
    sim = torch.nn.functional.normalize(emb, dim=-1) @ torch.nn.functional.normalize(text, dim=-1).T
    assert sim.shape == (3, 3) and (sim.abs() <= 1 + 1e-5).all()


def test_bad_inputs(clip):
    for bad in (torch.zeros(3, 32, 32), torch.zeros(1, 1, 32, 32), torch.zeros(1, 3, 0, 32)):
        with pytest.raises(DataError) as e:
            clip.encode(bad)
        assert "(B, 3, S, S)" in _one_line(e)
    with pytest.raises(DataError) as e:
        clip.encode(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    assert "float" in _one_line(e)
    with pytest.raises(ConfigError):
        clip.encode_text([])


def test_folder_errors(tmp_path, clip_folder):
    assert "clip" in IMAGE_ENCODERS
    with pytest.raises(ConfigError) as e:
        get_image_encoder("clip", path=tmp_path / "no_such_model")
    assert "no_such_model" in _one_line(e)
    with pytest.raises(ConfigError) as e:
        get_image_encoder("clip")
    assert "path=" in _one_line(e)
    sam_like = tmp_path / "sam"
    sam_like.mkdir()
    (sam_like / "config.json").write_text(json.dumps({"model_type": "sam"}))
    with pytest.raises(ConfigError) as e:
        get_image_encoder("clip", path=sam_like)
    assert "'sam'" in _one_line(e) and "'clip'" in str(e.value) and "config.json" in str(e.value)
    (sam_like / "config.json").write_text("{not json")
    with pytest.raises(ConfigError) as e:
        get_image_encoder("clip", path=sam_like)
    assert "JSON" in _one_line(e)
    no_processor = tmp_path / "no_processor"
    no_processor.mkdir()
    for f in clip_folder.iterdir():
        if "preprocessor" not in f.name:
            (no_processor / f.name).write_bytes(f.read_bytes())
    with pytest.raises(ConfigError) as e:
        get_image_encoder("clip", path=no_processor)
    assert "image processor" in _one_line(e)
    image_only = tmp_path / "image_only"
    image_only.mkdir()
    for f in clip_folder.iterdir():
        if not f.name.startswith(("tokenizer", "special_tokens", "vocab")):
            (image_only / f.name).write_bytes(f.read_bytes())
    enc = get_image_encoder("clip", path=image_only)
    assert enc.encode(torch.zeros(1, 3, 32, 32)).shape == (1, 16)
    with pytest.raises(ConfigError) as e:
        enc.encode_text(["a dog"])
    assert "image_only" in _one_line(e) and "tokenizer" in str(e.value)


def test_processor_folder(tmp_path, clip_folder, clip):
    """A folder written by CLIPProcessor.save_pretrained (transformers 5: processor_config.json, no
    preprocessor_config.json) loads the same."""
    from transformers import CLIPProcessor

    folder = tmp_path / "clip_processor"
    folder.mkdir()
    for f in clip_folder.iterdir():
        if f.name.startswith(("config", "model")):
            (folder / f.name).write_bytes(f.read_bytes())
    CLIPProcessor(image_processor=clip.image_processor, tokenizer=clip.tokenizer).save_pretrained(folder)
    enc = get_image_encoder("clip", path=folder)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(enc.encode(images), clip.encode(images), rtol=0, atol=0)
    torch.testing.assert_close(enc.encode_text(["a cat"]), clip.encode_text(["a cat"]), rtol=0, atol=0)
