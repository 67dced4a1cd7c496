rule evaluate:
    """10-fold verification accuracy of the trained model on one benchmark .bin."""
    input:
        weights=f"{R}/train/model.safetensors",
        bin=benchmark_bin,
    output:
        f"{R}/eval/{{bench}}.parquet",
    log:
        f"{R}/logs/eval/{{bench}}.log",
    benchmark:
        f"{R}/benchmarks/eval/{{bench}}.tsv"
    conda:
        "../../envs/gpu.yaml"
    threads: 4
    resources:
        runtime=runtime(0.01, 12000),
        mem_mb=mem_mb(16000),
        gpu=1,
    params:
        bin=lambda wildcards: BENCHMARKS[wildcards.bench],
        batch_size=config["evaluation"]["batch_size"],
        device=config["device"],
    script:
        "../../scripts/evaluate.py"


rule summary:
    """The benchmark table, beside the paper's HyperFace numbers."""
    input:
        expand(f"{R}/eval/{{bench}}.parquet", bench=sorted(BENCHMARKS)),
    output:
        parquet=f"{R}/eval/summary.parquet",
        md=f"{R}/eval/summary.md",
    log:
        f"{R}/logs/summary.log",
    localrule: True
    conda:
        "../../envs/tables.yaml"
    script:
        "../../scripts/summary.py"
