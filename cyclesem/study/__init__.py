"""Studies that outlive a machine: the plan and job records (``records``), what a run records about itself
(``run_record``), the sweep's progress line (``sweep_progress``), a study's dry run (``dry_run``) and the glue
that runs one sweep job (``sweep``)."""
