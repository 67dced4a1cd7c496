rule train:
    """iResNet + margin head on the synthetic dataset (resumable from its checkpoint), on
    training.gpus ranks inside the one job."""
    input:
        f"{R}/dataset.parquet",
    output:
        weights=f"{R}/train/model.safetensors",
        history=f"{R}/train/history.parquet",
    log:
        f"{R}/logs/train.log",
    benchmark:
        f"{R}/benchmarks/train.tsv"
    conda:
        "../../envs/gpu.yaml"
    threads: 16 * config["training"]["gpus"]
    resources:
        runtime=runtime_of("train"),
        mem_mb=mem_mb(64000 * config["training"]["gpus"]),
        gpu=config["training"]["gpus"],
    params:
        root=root_param(1),
        checkpoint_dir=lambda wildcards, output: os.path.dirname(output.weights),
        seed=config["seed"],
        training=config["training"],
        device=config["device"],
    script:
        "../../scripts/train.py"
