rule dataset:
    """Concatenate and filter the aligned shards into the training manifest."""
    input:
        aligned=expand(f"{R}/aligned/shard-{{shard}}.parquet", shard=ID_SHARDS),
        leakage=leakage_to_exclude(),
    output:
        dataset=f"{R}/dataset.parquet",
        counts=f"{R}/stats/filter_counts.parquet",
    params:
        n_identities=N_IDENTITIES,
        holdout_identities=config["evaluation"]["holdout_identities"],
        dataset=config["dataset"],
    log:
        f"{R}/logs/dataset.log",
    localrule: True
    conda:
        "../../envs/tables.yaml"
    script:
        "../../scripts/dataset.py"


rule holdout_bin:
    """A verification benchmark (.bin) from identities held out of training."""
    input:
        expand(f"{R}/aligned/shard-{{shard}}.parquet", shard=ID_SHARDS),
    output:
        f"{R}/eval/holdout.bin",
    params:
        root=results_root(1),
        seed=config["seed"],
        n_identities=N_IDENTITIES,
        holdout_identities=config["evaluation"]["holdout_identities"],
    log:
        f"{R}/logs/holdout_bin.log",
    localrule: True
    conda:
        "../../envs/tables.yaml"
    script:
        "../../scripts/holdout_bin.py"


rule export_imagefolder:
    """The training set as an ImageFolder tree for other training code."""
    input:
        f"{R}/dataset.parquet",
    output:
        directory(f"{R}/imagefolder"),
    params:
        root=results_root(0),
    log:
        f"{R}/logs/export_imagefolder.log",
    localrule: True
    conda:
        "../../envs/tables.yaml"
    script:
        "../../scripts/export_imagefolder.py"
