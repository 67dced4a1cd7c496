rule generate_shard:
    """Images of one shard of identities x images_per_identity: Arc2Face, or MobileStyleGAN
    variants of faces realised from the references."""
    input:
        references=f"{R}/references.parquet",
        weights=generation_weights(),
        gallery=for_stylegan_identities(f"{R}/gallery.parquet"),
        variation=for_stylegan_identities(f"{R}/variation.json"),
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
        gpu=0 if STYLEGAN_IDENTITIES else 1,  # MobileStyleGAN runs on the CPU (OpenVINO)
    params:
        identities=identity_range,
        root=root_param(1),
        seed=config["seed"],
        generation=generation_params(),
        encoding=config["images"]["generated"],
        device=config["device"],
        gallery=for_stylegan_identities(config["gallery"]),
        embedder=for_stylegan_identities(config["embedder"]),
    script:
        "../../scripts/generate_shard.py"


rule variation:
    """MobileStyleGAN identities: the yaw direction and acceptance threshold, from the gallery."""
    input:
        gallery=f"{R}/gallery.parquet",
        weights=by_content(S.gallery.weights),
    output:
        f"{R}/variation.json",
    log:
        f"{R}/logs/variation.log",
    benchmark:
        f"{R}/benchmarks/variation.tsv"
    conda:
        "../../envs/gpu.yaml"
    threads: 1
    resources:
        runtime=runtime_of("variation"),
        mem_mb=mem_mb(4000),
    params:
        seed=config["seed"],
        gallery=config["gallery"],
        accept_far=S.generation.variants.accept_far,
    script:
        "../../scripts/variation.py"
