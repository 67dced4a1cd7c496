rule align_shard:
    """MTCNN alignment to the ArcFace template, re-embedding and identity consistency."""
    input:
        generated=f"{R}/generated/shard-{{shard}}.parquet",
        references=f"{R}/references.parquet",
        weights=by_content(S.embedder.weights),
    output:
        f"{R}/aligned/shard-{{shard}}.parquet",
    log:
        f"{R}/logs/aligned/shard-{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/aligned/shard-{{shard}}.tsv"
    conda:
        "../../envs/gpu.yaml"
    threads: 4
    resources:
        runtime=runtime_of("align_shard"),
        mem_mb=mem_mb(16000),
        gpu=1,
    params:
        root=root_param(1),
        alignment=config["alignment"],
        embedder=config["embedder"],
        encoding=config["images"]["aligned"],
        device=config["device"],
    script:
        "../../scripts/align_shard.py"
