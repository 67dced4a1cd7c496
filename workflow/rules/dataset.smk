rule dataset:
    """Concatenate and filter the aligned shards into the training manifest."""
    input:
        aligned=expand(f"{R}/aligned/shard-{{shard}}.parquet", shard=ID_SHARDS),
        leakage=leakage_to_exclude(),
    output:
        dataset=f"{R}/dataset.parquet",
        counts=f"{R}/stats/filter_counts.parquet",
    log:
        f"{R}/logs/dataset.log",
    localrule: True
    conda:
        "../../envs/tables.yaml"
    params:
        root=root_param(0),
        n_identities=N_IDENTITIES,
        holdout_identities=config["evaluation"]["holdout_identities"],
        images_per_identity=config["generation"]["images_per_identity"],
        dataset=config["dataset"],
    script:
        "../../scripts/dataset.py"


rule holdout_bin:
    """A verification benchmark (.bin) from identities held out of training."""
    input:
        expand(f"{R}/aligned/shard-{{shard}}.parquet", shard=ID_SHARDS),
    output:
        f"{R}/eval/holdout.bin",
    log:
        f"{R}/logs/holdout_bin.log",
    localrule: True
    conda:
        "../../envs/tables.yaml"
    params:
        root=root_param(1),
        seed=config["seed"],
        n_identities=N_IDENTITIES,
        holdout_identities=config["evaluation"]["holdout_identities"],
        max_pairs=config["evaluation"]["holdout_pairs"],
    script:
        "../../scripts/holdout_bin.py"


rule export_imagefolder:
    """The training set as an ImageFolder tree for other training code."""
    input:
        f"{R}/dataset.parquet",
    output:
        directory(f"{R}/imagefolder"),
    log:
        f"{R}/logs/export_imagefolder.log",
    benchmark:
        f"{R}/benchmarks/export_imagefolder.tsv"
    conda:
        "../../envs/tables.yaml"
    threads: 1
    resources:
        runtime=runtime_of("export_imagefolder"),
        mem_mb=mem_mb(4000),
    params:
        root=root_param(0),
    script:
        "../../scripts/export_imagefolder.py"


rule export_rec:
    """The training set as insightface's train.rec/train.idx (arcface_torch, DALI)."""
    input:
        f"{R}/dataset.parquet",
    output:
        rec=f"{R}/rec/train.rec",
        idx=f"{R}/rec/train.idx",
        property=f"{R}/rec/property",
    log:
        f"{R}/logs/export_rec.log",
    benchmark:
        f"{R}/benchmarks/export_rec.tsv"
    conda:
        "../../envs/tables.yaml"
    threads: 1
    resources:
        runtime=runtime_of("export_rec"),
        mem_mb=mem_mb(4000),
    params:
        root=root_param(1),
        size=config["alignment"]["size"],
    script:
        "../../scripts/export_rec.py"


rule dataset_card:
    """DATASET_CARD.md: what the dataset is, how it was made, and the licences of its models."""
    input:
        dataset=f"{R}/dataset.parquet",
        counts=f"{R}/stats/filter_counts.parquet",
        references=f"{R}/references.parquet",
        leakage=[f"{R}/leakage/pairs.parquet"] if LEAKAGE["reference"] else [],
        judge=JUDGE_OUTPUTS if JUDGE["backend"] else [],
    output:
        f"{R}/DATASET_CARD.md",
    log:
        f"{R}/logs/dataset_card.log",
    localrule: True
    conda:
        "../../envs/tables.yaml"
    params:
        settings=card_settings(),
        tiny_root=TINY,
    script:
        "../../scripts/dataset_card.py"
