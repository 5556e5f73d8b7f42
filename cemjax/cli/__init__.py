"""The command-line jobs. Each is `cemjax.cli.<job>:run`, installed as the console script `cemjax-<job>` and
reachable as `python -m cemjax <job>`; the scripts under `experiments/` call the same functions.

  build, curate, train_quality, apply_quality, pretrain, finetune, evaluate, export, segment, demo

Exit codes: see `cemjax.common.errors`.
"""

JOBS = ("build", "curate", "train_quality", "apply_quality", "pretrain", "finetune", "evaluate", "export", "segment",
        "demo")  # fmt: skip
