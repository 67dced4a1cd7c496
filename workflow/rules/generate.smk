rule generate_shard:
    """Arc2Face images for one shard of identities x images_per_identity."""
    input:
        references=f"{R}/references.parquet",
        weights=generation_weights(),
    output:
        generated_output(f"{R}/generated/shard-{{shard}}.parquet"),
    log:
        f"{R}/logs/generated/shard-{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/generated/shard-{{shard}}.tsv"
    conda:
        "../../envs/gpu.yaml"
    threads: 4
    resources:
        runtime=runtime_of("generate_shard"),
        mem_mb=mem_mb(24000),
        gpu=1,
    params:
        identities=identity_range,
        root=root_param(1),
        seed=config["seed"],
        generation=config["generation"],
        encoding=config["images"]["generated"],
        device=config["device"],
    script:
        "../../scripts/generate_shard.py"
