"""`cemjax-finetune` (`cemjax.cli.finetune`); run `python experiments/finetune.py --help` for its flags."""

from cemjax.cli.finetune import run

if __name__ == "__main__":
    run()
