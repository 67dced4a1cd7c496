"""The planner: one table of throughputs behind the printed plan, the SLURM runtimes and the
partition check."""

from __future__ import annotations

import pytest
import yaml

from hyperface import plan
from hyperface.settings import Settings

from .conftest import REPO

PAPER = REPO / "config" / "paper.yaml"
PARTITIONS = REPO / "profiles" / "slurm" / "partitions.yaml"


def paper(**sections) -> Settings:
    config = yaml.safe_load(PAPER.read_text())
    for section, values in sections.items():
        config[section].update(values)
    return Settings.from_section(config)


def test_every_stage_has_a_rate_with_its_source_for_the_device_it_runs_on():
    rates = plan.load_rates()
    for stage in plan.stages(paper(), rates):
        for column in ("gpu", "cpu"):
            entry = plan.rate(rates, stage, column)
            assert entry["seconds"] > 0 and entry["source"], (stage.rule, column)
            assert isinstance(entry["measured"], bool)


def test_a_job_is_its_work_at_the_tables_rate_with_headroom():
    rates = plan.load_rates()
    stages = {st.rule: st for st in plan.stages(paper(), rates)}
    gen = stages["generate_shard"]
    assert gen.jobs == 25 and gen.units == 400 * 64 * 25  # images x steps of one shard
    assert plan.job_seconds(gen, rates, "gpu") == pytest.approx(400 * 64 * 1.25)  # the paper's
    assert plan.runtime_minutes(gen, rates) == 1067  # 8.9 h, x2 for an estimate
    # a retry of a resumable job asks the same; one that starts over asks more
    assert plan.attempt_minutes(gen, rates, 3) == 1067
    ev = stages["evaluate"]
    assert plan.attempt_minutes(ev, rates, 2) == 2 * plan.attempt_minutes(ev, rates, 1)
    train = plan.stages(paper(training={"gpus": 4}), rates)[4]
    assert plan.job_seconds(train, rates, "gpu") == pytest.approx(
        plan.job_seconds(stages["train"], rates, "gpu") / 4
    )


def test_a_job_longer_than_the_partitions_allow_names_the_setting_to_change():
    rates = plan.load_rates()
    limits = plan.partition_limits(PARTITIONS)
    assert limits == (2880.0, 2880.0)
    assert plan.too_long(plan.stages(paper(), rates), rates, limits) == []
    huge = plan.stages(paper(generation={"identities_per_shard": 5000}), rates)
    problems = plan.too_long(huge, rates, limits)
    assert len(problems) == 1 and "change generation.identities_per_shard" in problems[0]


def test_the_command_prints_the_plan_and_refuses_what_no_partition_fits(capsys, tmp_path):
    plan.main(["--configfile", str(PAPER)])
    out = capsys.readouterr().out
    assert "generate_shard" in out and "total" in out and "estimate" in out
    slow = tmp_path / "slow.yaml"
    slow.write_text(yaml.safe_dump({"training": {"epochs": 300}}))
    with pytest.raises(SystemExit):
        plan.main(["--configfile", str(PAPER), str(slow), "--partitions", str(PARTITIONS)])
    assert "change training.gpus" in capsys.readouterr().err


def test_calibrating_from_a_finished_run_rewrites_one_column(tmp_path):
    settings = paper()
    rates = plan.load_rates()
    bench = tmp_path / "run" / "results-paper" / "benchmarks"
    (bench / "generated").mkdir(parents=True)
    for shard in range(2):
        (bench / "generated" / f"shard-{shard:05d}.tsv").write_text("s\th:m:s\n32000.0\t8:53:20\n")
    (bench / "pack.tsv").write_text("s\th:m:s\n1800.0\t0:30:00\n")
    settings = Settings.from_section({**settings.as_section(), "results": "results-paper"})
    new = plan.calibrate(tmp_path / "run", settings, rates, "gpu", evaluations=5)
    gen = new["stages"]["generate_shard"]["gpu"]
    assert gen["measured"] and gen["seconds"] == pytest.approx(32000 / (400 * 64 * 25), rel=1e-3)
    assert new["stages"]["pack"]["gpu"]["measured"]
    assert not new["stages"]["train"]["gpu"]["measured"]  # no benchmark file: left as it was
