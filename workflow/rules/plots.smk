rule plots:
    """Every figure of `snakemake --report`."""
    input:
        **{name: PLOT_INPUTS[name] for name in inputs_read(FIGURES)},
    output:
        **{figure.name: report_output(figure) for figure in FIGURES},
    log:
        f"{R}/logs/plots.log",
    localrule: True
    conda:
        "../../envs/tables.yaml"
    params:
        root=root_param(1),
        grid_rows=GRID_ROWS,
    script:
        "../../scripts/plots.py"
