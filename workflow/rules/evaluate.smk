rule evaluate:
    """insightface's 10-fold verification of a model (the trained one, or a baseline of
    evaluation.models) on one benchmark .bin."""
    input:
        model=recogniser_file,
        bin=benchmark_bin,
    output:
        f"{R}/eval/{{model}}/{{bench}}.parquet",
    log:
        f"{R}/logs/eval/{{model}}/{{bench}}.log",
    benchmark:
        f"{R}/benchmarks/eval/{{model}}/{{bench}}.tsv"
    conda:
        "../../envs/gpu.yaml"
    threads: 4
    resources:
        runtime=runtime_of("evaluate"),
        mem_mb=mem_mb(16000),
        gpu=1,
    params:
        model=recogniser_path,
        bin=lambda wildcards: BENCHMARKS[wildcards.bench],
        batch_size=config["evaluation"]["batch_size"],
        device=config["device"],
    script:
        "../../scripts/evaluate.py"


rule summary:
    """The benchmark table of every model, beside the paper's HyperFace numbers."""
    input:
        expand(
            f"{R}/eval/{{model}}/{{bench}}.parquet",
            model=["trained", *sorted(BASELINES)],
            bench=sorted(BENCHMARKS),
        ),
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


rule export_model:
    """The trained backbone as ONNX (checked against the weights) and its model card."""
    input:
        weights=f"{R}/train/model.safetensors",
        history=f"{R}/train/history.parquet",
        summary=f"{R}/eval/summary.parquet",
        summary_md=f"{R}/eval/summary.md",
        references=f"{R}/references.parquet",
        dataset=f"{R}/dataset.parquet",
    output:
        onnx=f"{R}/model/model.onnx",
        card=f"{R}/model/MODEL_CARD.md",
    log:
        f"{R}/logs/export_model.log",
    benchmark:
        f"{R}/benchmarks/export_model.tsv"
    conda:
        "../../envs/gpu.yaml"
    threads: 1
    resources:
        runtime=10,
        mem_mb=mem_mb(8000),
    params:
        settings=card_settings(),
        training=config["training"],
        tiny_root=TINY,
    script:
        "../../scripts/export_model.py"
