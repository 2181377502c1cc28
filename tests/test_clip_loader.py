"""load_clip: the embedded model offline, local checkpoints, and errors that say what to do."""
import pytest
import torch
from PIL import Image

from coop_tutorial import load_clip
from coop_tutorial.embedded.weights import (EMBEDDED_CONFIGS, EMBEDDED_MODELS, build_embedded_model, embedded_model_config,
                                            read_embedded_checkpoint, resave, save_embedded_checkpoint)


def test_tiny_loads_offline_and_encodes():
    clip = load_clip("tiny")
    assert clip.name == "tiny" and clip.context_length == 32 and clip.image_size == 32
    image = clip.preprocess(Image.new("RGB", (32, 32), "red")).unsqueeze(0)
    with torch.no_grad():
        image_features = clip.model.encode_image(image)
        text_features = clip.model.encode_text(clip.tokenizer(["a photo of a circle."]))
    assert image_features.shape == text_features.shape == (1, clip.embed_dim)
    assert not any(p.requires_grad for p in clip.model.parameters())
    assert clip.trained_token_ids is not None and 100 < len(clip.trained_token_ids) < 2000
    for key in ("seed", "steps", "corpus_pairs", "duration_s", "git_commit"):
        assert key in clip.metadata


def test_shipped_weights_are_small():
    assert EMBEDDED_MODELS["tiny"].stat().st_size <= 20 * 2**20


def test_untrained_words_read_as_neutral_tokens():
    clip = load_clip("tiny")
    table = clip.model.token_embedding.weight
    unseen = clip.tokenizer(["zyzzyva"])[0, 1]
    assert int(unseen) not in set(clip.trained_token_ids.tolist())
    assert torch.allclose(table[unseen], table[clip.trained_token_ids].mean(0), atol=1e-5)


def test_embedded_checkpoint_roundtrip(tmp_path):
    config = embedded_model_config("tiny")
    model = build_embedded_model(config)
    ids = torch.tensor([0, 320, 49406, 49407])
    path = tmp_path / "mine.safetensors"
    save_embedded_checkpoint(model, config, ids, {"seed": 3}, path)
    clip = load_clip("tiny", pretrained=path)
    assert clip.metadata == {"seed": 3, "storage_dtype": "float16"}
    # stored in fp16, so equal to the fp16 rounding of the trained weights
    assert torch.equal(clip.model.visual.conv1.weight, model.visual.conv1.weight.half().float())
    assert torch.equal(clip.model.token_embedding.weight[320], model.token_embedding.weight[320].half().float())


def test_random_open_clip_model_loads_from_a_local_file(tmp_path):
    import open_clip

    open_clip.add_model_config  # noqa: B018 - the registry is what load_clip consults
    model = open_clip.create_model("RN50", pretrained=None)
    path = tmp_path / "rn50.pt"
    torch.save(model.state_dict(), path)
    clip = load_clip("RN50", pretrained=path)
    assert torch.equal(clip.model.visual.conv1.weight, model.visual.conv1.weight)
    assert clip.image_size == 224


@pytest.mark.parametrize("name, hint", [("tinyy", "tiny"), ("ViT-B-61", "ViT-B-16"), ("resnet50", "")])
def test_unknown_model_names_suggest_what_to_use(name, hint):
    with pytest.raises(ValueError, match="Unknown model") as info:
        load_clip(name)
    assert hint in str(info.value) and "'tiny'" in str(info.value)


def test_unknown_pretrained_tag_is_explained():
    with pytest.raises(ValueError, match="neither a file nor a pretrained tag"):
        load_clip("RN50", pretrained="not-a-tag")


def test_missing_embedded_checkpoint_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="coop_tutorial.pretrain"):
        load_clip("tiny", pretrained=tmp_path / "missing.safetensors")


def test_hub_download_without_network_says_what_to_do(monkeypatch):
    import open_clip

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(open_clip, "create_model", offline)
    with pytest.raises(RuntimeError, match="pretrained='/path/to/checkpoint"):
        load_clip("RN50", pretrained="openai")


def test_pretrain_command_with_another_architecture(tmp_path):
    # `--model-config` pretrains another architecture; the checkpoint carries it, so load_clip rebuilds it.
    import json

    from coop_tutorial import pretrain

    config = json.loads(EMBEDDED_CONFIGS["tiny"].read_text())
    config["vision_cfg"]["width"] = 8
    (tmp_path / "wide.json").write_text(json.dumps(config))
    out = tmp_path / "tiny_w8.safetensors"
    pretrain.main(["--steps", "2", "--batch-size", "8", "--workers", "0", "--threads", "1",
                   "--model-config", str(tmp_path / "wide.json"), "--out", str(out)])
    clip = load_clip("tiny", pretrained=out)
    assert clip.model.visual.conv1.out_channels == 4  # ModifiedResNet's stem starts at width // 2
    assert (tmp_path / "tiny_w8.log.csv").exists()
    # stored in fp16 (the shipped file must stay small), loaded as fp32
    from safetensors import safe_open
    with safe_open(str(out), framework="pt") as handle:
        assert handle.get_tensor("visual.conv1.weight").dtype == torch.float16
        assert json.loads(handle.metadata()["metadata"])["storage_dtype"] == "float16"
    assert clip.model.visual.conv1.weight.dtype == torch.float32
    # --resave rewrites a checkpoint in the storage format, same weights up to fp16 rounding, provenance kept
    again = tmp_path / "again.safetensors"
    pretrain.main(["--resave", str(out), "--out", str(again)])
    reloaded = load_clip("tiny", pretrained=again)
    assert torch.equal(reloaded.model.visual.conv1.weight, clip.model.visual.conv1.weight)
    assert reloaded.metadata["steps"] == 2 and "sha1" in reloaded.metadata["resaved_from"]
    # a file whose tensors do not fit its own config header is refused by the loader and by --resave
    from safetensors.torch import load_file, save_file
    with safe_open(str(out), framework="pt") as handle:
        header = dict(handle.metadata())
    mixed = tmp_path / "mixed.safetensors"
    save_file(load_file(str(out)), str(mixed), metadata={**header, "config": EMBEDDED_CONFIGS["tiny"].read_text()})
    for attempt in (lambda: load_clip("tiny", pretrained=mixed),
                    lambda: resave(mixed, tmp_path / "never.safetensors")):
        with pytest.raises(ValueError, match=r"do not fit the architecture.*wrong shapes.*visual\.conv1\.weight"):
            attempt()
    assert not (tmp_path / "never.safetensors").exists()
    no_ids = {k: v for k, v in load_file(str(out)).items() if k != "trained_token_ids"}
    save_file(no_ids, str(mixed), metadata=header)
    with pytest.raises(ValueError, match="no 'trained_token_ids' tensor"):
        load_clip("tiny", pretrained=mixed)
    with pytest.raises(SystemExit):
        pretrain.main(["--steps", "1", "--model-config", str(tmp_path / "missing.json"), "--out", str(out)])


def test_pretrain_snapshots_leave_loadable_checkpoints_along_the_way(tmp_path):
    # a long run stopped early still leaves checkpoints: every --snapshot-every steps, with the log so far
    from coop_tutorial import pretrain

    out = tmp_path / "run.safetensors"
    pretrain.main(["--steps", "5", "--batch-size", "8", "--workers", "0", "--threads", "1",
                   "--snapshot-every", "2", "--out", str(out)])
    for steps in (2, 4):
        snapshot = tmp_path / f"run.step{steps}.safetensors"
        _, _, metadata = read_embedded_checkpoint(snapshot)
        assert metadata["steps"] == steps and metadata["snapshot_of_run_steps"] == 5
        assert (tmp_path / f"run.step{steps}.log.csv").read_text().count("\n") >= 2
        assert load_clip("tiny", pretrained=snapshot).model is not None
    _, _, final = read_embedded_checkpoint(out)
    assert final["steps"] == 5 and "snapshot_of_run_steps" not in final
    assert not (tmp_path / "run.step5.safetensors").exists()


def test_judge_scores_a_checkpoint_on_held_out_validation_images():
    from coop_tutorial.embedded.judge import judge_checkpoint, judge_summary

    from coop_tutorial.embedded.judge import shift_summary

    frame = judge_checkpoint(None, tasks=["shapes"], shots=2, seeds=[1], progress=False, shifts=True)
    row = frame.iloc[0]
    assert set(frame.columns) >= {"zero_shot", "best_prompt", "linear_probe", "coop", "coop_minus_best"}
    assert row["best_prompt"] >= row["zero_shot"] - 1e-3  # the default template is one of the candidates
    assert row["coop_minus_best"] == pytest.approx(row["coop"] - row["best_prompt"])
    plain = frame.drop(columns=[c for c in frame.columns if "@" in c])
    assert 0 <= row["coop"] <= 100 and judge_summary(plain).shape[0] == 1
    # the robustness claims, read on the design draws of the shifted sets (never their test images)
    table, checks = shift_summary(frame, "shapes")
    assert list(table.columns) == ["shapes", "shapes_v2", "shapes_sketch", "shapes_hard", "shapes_painting"]
    assert table.loc["coop", "shapes_sketch"] == row["coop@shapes_sketch"] and len(checks) == 8
    with pytest.raises(ValueError, match="shifts=True"):
        shift_summary(plain, "shapes")
    with pytest.raises(ValueError, match="read with --shifts on its source"):
        judge_checkpoint(None, tasks=["shapes_sketch"], shots=2, seeds=[1], progress=False)
