rule pack:
    """HyperFace optimisation of the reference embeddings (resumable from its checkpoint)."""
    input:
        f"{R}/gallery.parquet",
    output:
        references=f"{R}/references.parquet",
        trace=f"{R}/pack/trace.parquet",
    log:
        f"{R}/logs/pack.log",
    benchmark:
        f"{R}/benchmarks/pack.tsv"
    conda:
        "../../envs/gpu.yaml"
    threads: 4
    resources:
        runtime=runtime_of("pack"),
        mem_mb=mem_mb(16000),
        gpu=1,
    params:
        checkpoint_dir=lambda wildcards, output: os.path.dirname(output.trace),
        seed=config["seed"],
        packing=config["packing"],
        device=config["device"],
    script:
        "../../scripts/pack.py"
