rule fingerprint:
    """The content stamp of a model, benchmark or image folder (written here when missing, and
    brought up to date when the Snakefile is parsed): the input rules take instead of the path."""
    input:
        ancient(lambda wildcards: STAMPED[f"{wildcards.name}.fingerprint"]),
    output:
        f"{FINGERPRINTS}/{{name}}.fingerprint",
    log:
        f"{R}/logs/fingerprint/{{name}}.log",
    wildcard_constraints:
        name="[^/]+",
    localrule: True
    conda:
        "../../envs/tables.yaml"
    params:
        folder=FINGERPRINTS,
        built=lambda wildcards, input: os.path.normpath(input[0]) in BUILT,
    script:
        "../../scripts/fingerprint.py"
