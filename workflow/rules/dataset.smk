rule dataset:
    """Concatenate and filter the aligned shards into the training manifest."""
    input:
        expand(f"{R}/aligned/shard-{{shard}}.parquet", shard=ID_SHARDS),
    output:
        f"{R}/dataset.parquet",
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
        root=results_root,
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
