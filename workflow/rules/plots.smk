rule plots:
    """Every figure of `snakemake --report`."""
    input:
        trace=f"{R}/pack/trace.parquet",
        references=f"{R}/references.parquet",
        gallery=f"{R}/gallery.parquet",
        generated=(
            expand(f"{R}/generated/shard-{{shard}}.parquet", shard=GRID_SHARDS)
            if KEEP_GENERATED
            else []
        ),
        aligned=expand(f"{R}/aligned/shard-{{shard}}.parquet", shard=GRID_SHARDS),
        counts=f"{R}/stats/filter_counts.parquet",
        images=f"{R}/stats/images.parquet",
        similarity=f"{R}/stats/similarity.parquet",
        history=f"{R}/train/history.parquet",
        summary=f"{R}/eval/summary.md",
        judge=JUDGE_OUTPUTS if JUDGE["backend"] else [],
    output:
        **{name: report_output(name) for name in PLOTS},
        **({"judge": report_output("judge", "html")} if JUDGE["backend"] else {}),
        benchmarks=report_output("benchmarks", "html"),
        packing=report_output("packing", "html"),
    log:
        f"{R}/logs/plots.log",
    localrule: True
    conda:
        "../../envs/tables.yaml"
    params:
        root=results_root(1),
        grid_rows=GRID_ROWS,
    script:
        "../../scripts/plots.py"
