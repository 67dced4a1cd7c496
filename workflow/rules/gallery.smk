rule gallery_shard:
    """Unconditional faces -> aligned crops -> embeddings for one shard of the gallery."""
    input:
        gallery_weights(),
    output:
        f"{R}/gallery/shard-{{shard}}.parquet",
    log:
        f"{R}/logs/gallery/shard-{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/gallery/shard-{{shard}}.tsv"
    conda:
        "../../envs/gpu.yaml"
    threads: 4
    resources:
        runtime=runtime_of("gallery_shard"),
        mem_mb=mem_mb(16000),
        gpu=1,
    params:
        indices=gallery_indices,
        seed=config["seed"],
        gallery=config["gallery"],
        embedder=config["embedder"],
        encoding=config["images"]["gallery"],
        device=config["device"],
    script:
        "../../scripts/gallery_shard.py"


rule gallery:
    """All gallery shards in one manifest."""
    input:
        expand(f"{R}/gallery/shard-{{shard}}.parquet", shard=GALLERY_SHARDS),
    output:
        f"{R}/gallery.parquet",
    log:
        f"{R}/logs/gallery.log",
    localrule: True
    conda:
        "../../envs/tables.yaml"
    params:
        root=root_param(0),
    script:
        "../../scripts/gallery.py"
