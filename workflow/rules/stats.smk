rule stats:
    """Identity consistency, similarity distributions, detection rate and head pose."""
    input:
        aligned=expand(f"{R}/aligned/shard-{{shard}}.parquet", shard=ID_SHARDS),
        references=f"{R}/references.parquet",
    output:
        identities=f"{R}/stats/identities.parquet",
        similarity=f"{R}/stats/similarity.parquet",
        images=f"{R}/stats/images.parquet",
    log:
        f"{R}/logs/stats.log",
    benchmark:
        f"{R}/benchmarks/stats.tsv"
    conda:
        "../../envs/tables.yaml"
    threads: 2
    resources:
        runtime=runtime_of("stats"),
        mem_mb=mem_mb(16000),
    script:
        "../../scripts/stats.py"


rule leakage:
    """The synthetic images most similar to real faces (HyperFace appendix D)."""
    input:
        aligned=expand(f"{R}/aligned/shard-{{shard}}.parquet", shard=ID_SHARDS),
        gallery=f"{R}/gallery.parquet",
        reference=leakage_reference(),
        weights=by_content(S.embedder.weights),
    output:
        pairs=f"{R}/leakage/pairs.parquet",
        pictures=directory(f"{R}/leakage/pairs"),
    log:
        f"{R}/logs/leakage.log",
    benchmark:
        f"{R}/benchmarks/leakage.tsv"
    conda:
        "../../envs/gpu.yaml"
    threads: 4
    resources:
        runtime=runtime_of("leakage"),
        mem_mb=mem_mb(16000),
        gpu=1,
    params:
        root=root_param(1),
        leakage=config["leakage"],
        embedder=config["embedder"],
        device=config["device"],
    script:
        "../../scripts/leakage.py"


rule judge:
    """An independent detector and recogniser's verdict: detection, identity consistency, separation."""
    input:
        aligned=expand(f"{R}/aligned/shard-{{shard}}.parquet", shard=ID_SHARDS),
        gallery=expand(f"{R}/gallery/shard-{{shard}}.parquet", shard=GALLERY_SHARDS),
        references=f"{R}/references.parquet",
        weights=by_content(JUDGE["weights"], JUDGE["detector"]),
    output:
        **dict(zip(JUDGE_PARTS, JUDGE_OUTPUTS)),
    log:
        f"{R}/logs/judge.log",
    benchmark:
        f"{R}/benchmarks/judge.tsv"
    conda:
        "../../envs/gpu.yaml"
    threads: 2
    resources:
        runtime=runtime_of("judge"),
        mem_mb=mem_mb(8000),
    params:
        root=root_param(1),
        judge=JUDGE,
    script:
        "../../scripts/judge.py"
