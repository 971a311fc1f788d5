"""The operator's model policy (grpo_viz.policies.access): what a link may load, the offered list, the size limit."""

from __future__ import annotations

import json
import struct

import pytest

from grpo_viz.policies.access import (ALLOW_LOCAL_ENV, MAX_MB_ENV, MB, OFFERED_ENV, SMOLLM2_PARAMETERS, LoadRequest,
                                      ModelAccess, folder_float32_bytes, model_folder, request_bytes)

from .lm_fixtures import build_model


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return build_model(tmp_path_factory.mktemp("tiny") / "gpt2", "gpt2")


def test_unset_means_a_personal_machine_local_models_on_nothing_offered_no_fixed_limit():
    access = ModelAccess.from_env({})
    assert access.allow_local and access.offered == () and access.max_bytes is None and access.problems == ()
    assert list(access.choices()) == ["builtin", "smollm2", "hf"]


@pytest.mark.parametrize("text", ["0", "false", "no", "OFF", " 0 "])
def test_off_removes_the_local_choice(text):
    access = ModelAccess.from_env({ALLOW_LOCAL_ENV: text})
    assert not access.allow_local and list(access.choices()) == ["builtin", "smollm2"]


def test_a_typo_in_the_switch_leaves_it_off_and_says_so():
    access = ModelAccess.from_env({ALLOW_LOCAL_ENV: "maybe"})
    assert not access.allow_local and "maybe" in access.problems[0]


def test_with_local_models_off_the_refusal_is_the_same_whatever_the_link_names(tmp_path, tiny_folder):
    access = ModelAccess.from_env({ALLOW_LOCAL_ENV: "0"})
    messages = set()
    for source in ["/etc", "/nonexistent/x", str(tiny_folder), str(tmp_path), "", "org/model", "../../etc/passwd"]:
        with pytest.raises(ValueError) as err:
            access.request("hf", source)
        messages.add(str(err.value))
    for kind in ["gpt9", "/etc", ""]:
        with pytest.raises(ValueError) as err:
            access.request(kind, "/etc")
        messages.add(str(err.value))
    assert len(messages) == 1
    (message,) = messages
    assert "only the models it offers (builtin, smollm2)" in message and "/etc" not in message


def test_with_local_models_on_a_folder_is_passed_through_to_the_loader(tiny_folder):
    access = ModelAccess.from_env({ALLOW_LOCAL_ENV: "1"})
    assert access.request("hf", f" {tiny_folder} ") == LoadRequest("hf", str(tiny_folder), str(tiny_folder))
    assert access.request("smollm2") == LoadRequest("smollm2", "", "SmolLM2-135M-Instruct (LoRA)")


def test_the_offered_list_becomes_choices_in_order_whatever_the_switch(tiny_folder):
    env = {OFFERED_ENV: f"tiny={tiny_folder}; other = /models/other\n# a comment\n", ALLOW_LOCAL_ENV: "0"}
    access = ModelAccess.from_env(env)
    assert list(access.choices()) == ["builtin", "smollm2", "tiny", "other"]
    assert access.request("tiny", "/etc") == LoadRequest("hf", str(tiny_folder), "tiny", offered=True)
    assert access.request("other").source == "/models/other"
    assert "offered by this server" in access.choices()["tiny"] and str(tiny_folder) not in access.choices()["tiny"]
    with_local = ModelAccess.from_env({**env, ALLOW_LOCAL_ENV: "1"})
    assert list(with_local.choices()) == ["builtin", "smollm2", "tiny", "other", "hf"]


@pytest.mark.parametrize("entry, reason", [
    ("no-equals-sign", "not name=path"), ("x=", "not name=path"), ("hf=/m", "cannot name"),
    ("builtin=/m", "cannot name"), ("bad name=/m", "cannot name"), ("a=/m;a=/n", "listed twice"),
])
def test_a_bad_offered_entry_is_ignored_and_reported(entry, reason):
    access = ModelAccess.from_env({OFFERED_ENV: entry})
    assert any(reason in p for p in access.problems), access.problems
    assert [name for name, _ in access.offered] in ([], ["a"])
    if entry.startswith("a="):
        assert access.offered == (("a", "/m"),)


def test_the_size_of_a_safetensors_folder_is_read_from_its_header(tiny_folder):
    import torch
    from safetensors.torch import load_file

    tensors = load_file(str(tiny_folder / "model.safetensors"))
    parameters = sum(t.numel() for t in tensors.values())
    assert folder_float32_bytes(tiny_folder) == parameters * 4
    assert request_bytes(LoadRequest("hf", str(tiny_folder))) == parameters * 4
    assert request_bytes(LoadRequest("smollm2")) == SMOLLM2_PARAMETERS * 4
    assert request_bytes(LoadRequest("builtin")) is None
    assert all(t.dtype == torch.float32 for t in tensors.values())


def test_sharded_safetensors_and_a_half_precision_bin_are_counted_as_float32(tmp_path):
    def shard(name: str, shapes: dict[str, list[int]]):
        header = json.dumps({"__metadata__": {"format": "pt"},
                             **{k: {"dtype": "BF16", "shape": s, "data_offsets": [0, 0]} for k, s in shapes.items()}})
        (tmp_path / name).write_bytes(struct.pack("<Q", len(header)) + header.encode())

    shard("a.safetensors", {"w": [10, 20], "b": [20]})
    shard("b.safetensors", {"v": [3, 4, 5]})
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"w": "a.safetensors", "b": "a.safetensors", "v": "b.safetensors"}}))
    assert folder_float32_bytes(tmp_path) == (200 + 20 + 60) * 4

    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    (bin_folder / "pytorch_model.bin").write_bytes(b"\0" * 1000)
    (bin_folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "torch_dtype": "float16"}))
    assert folder_float32_bytes(bin_folder) == 2000


def test_what_cannot_be_weighed_is_left_to_the_loader(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"junk")
    assert folder_float32_bytes(tmp_path) is None
    assert folder_float32_bytes(tmp_path / "missing") is None
    assert model_folder("/nonexistent/x") is None and model_folder("") is None
    assert model_folder("nobody/not-in-the-cache") is None


def test_a_model_larger_than_the_limit_is_refused_before_it_loads(tiny_folder):
    size = folder_float32_bytes(tiny_folder)
    request = LoadRequest("hf", str(tiny_folder), "tiny")
    small = ModelAccess.from_env({MAX_MB_ENV: str(size / MB / 2)})
    refusal = rf"tiny needs about .* MB .*limit of .* MB: the limit its operator set \({MAX_MB_ENV}\)"
    with pytest.raises(ValueError, match=refusal):
        small.check_size(request)
    assert ModelAccess.from_env({MAX_MB_ENV: str(size / MB * 2)}).check_size(request) == size


def test_by_default_the_limit_is_half_the_free_memory():
    access = ModelAccess.from_env({})
    assert access.limit_bytes(available=2_000 * MB) == 1_000 * MB
    assert access.limit_bytes() > 0  # psutil's figure for this machine
    with pytest.raises(ValueError, match="half the memory this machine has free"):
        access.check_size(LoadRequest("smollm2", name="SmolLM2"), available=1_000 * MB)  # needs 538 MB > 500 MB
    assert access.check_size(LoadRequest("smollm2"), available=1_200 * MB) == SMOLLM2_PARAMETERS * 4
    assert access.check_size(LoadRequest("builtin"), available=0) is None


@pytest.mark.parametrize("text", ["lots", "-5", "0", "nan", "inf"])
def test_a_bad_limit_falls_back_to_the_default_and_says_so(text):
    access = ModelAccess.from_env({MAX_MB_ENV: text})
    assert access.max_bytes is None and MAX_MB_ENV in access.problems[0]
